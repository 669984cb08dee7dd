// Values a staff member revealed stay on screen for a limited time (data-seconds), then are
// removed from the page, not just hidden. Loaded as a static file: the CSP allows no inline script.
"use strict";
(function () {
  const box = document.getElementById("revealed");
  if (!box) {
    return;
  }
  const seconds = Math.max(1, parseInt(box.dataset.seconds, 10) || 60);
  const mask = box.dataset.mask || "\u2022\u2022\u2022\u2022\u2022\u2022";
  const counter = box.querySelector("[data-countdown]");
  let left = seconds;
  let ticking = null;

  function clear() {
    window.clearInterval(ticking);
    box.querySelectorAll("[data-value]").forEach(function (cell) {
      cell.textContent = mask;
    });
    const caption = box.querySelector("caption");
    if (caption) {
      caption.textContent = "Revealed values hidden again. Reveal again, with a reason, if you still need them.";
    }
    box.dataset.cleared = "true";
  }

  ticking = window.setInterval(function () {
    left -= 1;
    if (left <= 0) {
      clear();
    } else if (counter) {
      counter.textContent = String(left);
    }
  }, 1000);
  // Leaving the page (or the browser keeping it for "back") must not keep the values around.
  window.addEventListener("pagehide", clear);
})();
