from playwright.sync_api import Page
from tests.browser.conftest import ConsoleWatch

def test_scratch(page: Page, console: ConsoleWatch) -> None:
    page.goto("/login")
    page.evaluate("""document.body.insertAdjacentHTML('beforeend', '<div style="color:red">x</div>');
      const s = document.createElement('script'); s.textContent = 'console.log(1)'; document.body.appendChild(s);""")
    page.wait_for_timeout(300)
    print("ERRORS", console.errors)
