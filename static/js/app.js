// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";

  // Error toasts: the server answers failed HTMX requests with HX-Trigger {"toast": {level, message}}.
  function showToast(detail) {
    var box = document.getElementById("toasts");
    if (!box || !detail || !detail.message) return;
    var toast = document.createElement("p");
    toast.className = "toast toast-" + (detail.level || "info");
    toast.textContent = detail.message;
    box.appendChild(toast);
    setTimeout(function () { toast.remove(); }, 6000);
  }

  document.body.addEventListener("toast", function (event) { showToast(event.detail); });
  document.body.addEventListener("htmx:sendError", function () {
    showToast({ level: "error", message: "Could not reach Fairshelf. Check your connection and try again." });
  });
})();
