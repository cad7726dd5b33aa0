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

// Times (the `timestamp` filter) arrive as <time datetime="…Z">… UTC</time>: show them in the reader's own time zone,
// with the zone's name, and keep the UTC text as the tooltip. Without JavaScript they stay in UTC and say so.
function two(number) { return String(number).padStart(2, "0"); }

function showLocalTimes(root) {
  root.querySelectorAll("time[datetime$='Z']:not([data-local])").forEach((element) => {
    const moment = new Date(element.getAttribute("datetime"));
    if (Number.isNaN(moment.getTime())) return;
    const zone = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" })
      .formatToParts(moment).find((part) => part.type === "timeZoneName");
    const day = `${moment.getFullYear()}-${two(moment.getMonth() + 1)}-${two(moment.getDate())}`;
    const clock = `${two(moment.getHours())}:${two(moment.getMinutes())}:${two(moment.getSeconds())}`;
    element.title = element.textContent;
    element.textContent = `${day} ${clock}${zone ? " " + zone.value : ""}`;
    element.dataset.local = "1";
  });
}

function enhance(root) {
  setUpCopyButtons(root);
  showLocalTimes(root);
}

document.addEventListener("DOMContentLoaded", () => enhance(document));
document.addEventListener("htmx:afterSettle", (event) => enhance(event.target));

// After Predict: the answer may be beside a form taller than the window, so bring it into view and move focus there
// (screen readers read it; the area keeps focus while the card inside it is polled and replaced). A success also
// clears the messages of an earlier refused submission, which would otherwise contradict the result.
function clearFormErrors(form) {
  form.querySelectorAll(".form-error, .field-error").forEach((message) => message.remove());
  form.querySelectorAll(".has-error").forEach((field) => field.classList.remove("has-error"));
  form.querySelectorAll("[aria-invalid]").forEach((input) => {
    input.removeAttribute("aria-invalid");
    input.setAttribute("aria-describedby", input.id + "-hint");
  });
}

document.addEventListener("htmx:afterSwap", (event) => {
  const source = event.detail.requestConfig && event.detail.requestConfig.elt;
  if (!source || source.id !== "predict-form") return;
  const target = event.detail.target;
  if (target.id === "job-status") {
    clearFormErrors(source);
    target.setAttribute("tabindex", "-1");
    target.focus({ preventScroll: true });
    target.scrollIntoView({ block: "nearest" });
  }
});

// Refused: the form came back with its messages (it replaced the old one, so this is the new form's load event);
// start at the first field to fix, or at the banner when no field is to blame.
document.addEventListener("htmx:load", (event) => {
  const form = event.target;
  if (form.id !== "predict-form") return;
  const first = form.querySelector("[aria-invalid=true]") || form.querySelector(".form-error");
  if (!first) return;
  if (!first.matches("input, select")) first.setAttribute("tabindex", "-1");
  first.focus({ preventScroll: true });
  first.scrollIntoView({ block: "center" });
});

// Forms that destroy something (revoke a key, disable a user, cancel a job) ask first. Listening while the event
// goes down (capture) runs this before htmx's own submit handler on the form, so a "no" stops both.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

// The history's days are the reader's: send their time zone with the filters (without this, the days are UTC's).
document.addEventListener("DOMContentLoaded", () => {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  document.querySelectorAll("input[data-time-zone]").forEach((input) => {
    if (!input.value && zone) input.value = zone;
  });
});
