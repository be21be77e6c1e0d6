// Behaviour that htmx attributes do not cover. Kept out of the pages: the CSP forbids inline script.
(function () {
  "use strict";
  // A header checkbox (data-toggle-all="name") ticks every row checkbox of that name in its form.
  document.addEventListener("change", function (event) {
    var toggle = event.target.closest("[data-toggle-all]");
    if (!toggle) return;
    var form = toggle.form || toggle.closest("form");
    if (!form) return;
    form.querySelectorAll('input[type="checkbox"][name="' + toggle.dataset.toggleAll + '"]')
      .forEach(function (box) { box.checked = toggle.checked; box.dispatchEvent(new Event("change", {bubbles: true})); });
  });
})();
