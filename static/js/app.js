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

  // Uploads: refuse a too-large file before sending a byte, and show the browser's upload progress.
  document.body.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("input[type=file][data-max-bytes]")) return;
    var file = input.files && input.files[0];
    var tooBig = file && file.size > Number(input.dataset.maxBytes);
    input.setCustomValidity(tooBig ? "This file is larger than the " + input.dataset.maxLabel + " your tier allows per file." : "");
    if (tooBig) input.reportValidity();
  });
  document.body.addEventListener("htmx:xhr:progress", function (event) {
    var form = event.target.closest && event.target.closest(".upload-form");
    var bar = form && form.querySelector(".upload-progress");
    if (!bar || !event.detail.lengthComputable) return;
    bar.hidden = false;
    bar.value = Math.round((100 * event.detail.loaded) / event.detail.total);
    bar.textContent = bar.value + "%";
  });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    var form = event.target.closest && event.target.closest(".upload-form");
    if (!form) return;
    var bar = form.querySelector(".upload-progress");
    if (bar) { bar.hidden = true; bar.value = 0; }
    if (event.detail.successful) form.reset();
  });

  // htmx keeps a copy of the page's markup for the Back button; typed values and chosen options live outside
  // the markup, so they are written into it first (otherwise Back shows results under an empty search box).
  document.body.addEventListener("htmx:beforeHistorySave", function () {
    document.querySelectorAll("input, textarea, select").forEach(function (field) {
      if (field.type === "file" || field.type === "password" || field.type === "hidden") return;
      if (field.tagName === "SELECT") {
        Array.prototype.forEach.call(field.options, function (option) { option.toggleAttribute("selected", option.selected); });
      } else if (field.type === "checkbox" || field.type === "radio") {
        field.toggleAttribute("checked", field.checked);
      } else if (field.tagName === "TEXTAREA") {
        field.textContent = field.value;
      } else {
        field.setAttribute("value", field.value);
      }
    });
  });

  // Chapter links seek the page's player instead of opening the file (the plain link still works without this).
  document.body.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-seek]");
    var player = link && document.querySelector(".player audio, .player video");
    if (!player) return;
    event.preventDefault();
    player.currentTime = Number(link.dataset.seek);
    player.play();
  });
})();
