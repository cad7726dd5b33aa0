// apot's own behaviour on top of htmx, in a file because the Content-Security-Policy refuses inline script.
// Everything here is an improvement: every page works without it.
"use strict";

// Copy buttons (macros/copy.html): shown only when the clipboard can be written.
function setUpCopyButtons(root) {
  if (!navigator.clipboard) return;
  root.querySelectorAll("button[data-copy]").forEach((button) => {
    button.hidden = false;
    if (button.dataset.copyReady) return;
    button.dataset.copyReady = "1";
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      const label = button.textContent;
      try {
        await navigator.clipboard.writeText(source.textContent.trim());
        button.textContent = "Copied";
      } catch (error) {
        button.textContent = "Select and copy it by hand";
      }
      setTimeout(() => { button.textContent = label; }, 2000);
    });
  });
}

document.addEventListener("DOMContentLoaded", () => setUpCopyButtons(document));
document.addEventListener("htmx:afterSettle", (event) => setUpCopyButtons(event.target));
