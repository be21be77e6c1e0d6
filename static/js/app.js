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

  // A control marked data-submit-on-change (rows per page) applies its form at once.
  document.addEventListener("change", function (event) {
    var control = event.target.closest("[data-submit-on-change]");
    if (control && control.form) control.form.requestSubmit();
  });

  // Bulk buttons (data-needs-selection) stay disabled until a row or "select all matching" is
  // ticked in their form: an empty post would only lead to a page saying nothing was selected.
  function syncBulkButtons(form) {
    var buttons = form.querySelectorAll("[data-needs-selection]");
    if (!buttons.length) return;
    var selected = form.querySelector('input[name="pk"]:checked, input[name="_all"]:checked');
    buttons.forEach(function (button) { button.disabled = !selected; });
  }
  function syncAll() { document.querySelectorAll("form").forEach(syncBulkButtons); }
  document.addEventListener("change", function (event) {
    if (event.target.form) syncBulkButtons(event.target.form);
  });
  document.addEventListener("DOMContentLoaded", syncAll);
  document.addEventListener("htmx:afterSettle", syncAll);

  // A GET form marked data-drop-empty leaves its blank fields out of the URL that htmx requests
  // and pushes, so that a shared link shows only the filters in use.
  document.addEventListener("htmx:configRequest", function (event) {
    var form = event.detail.elt;
    if (event.detail.verb !== "get" || !form.matches("form[data-drop-empty]")) return;
    Array.from(event.detail.formData.entries()).forEach(function (entry) {
      if (entry[1] === "") event.detail.formData.delete(entry[0]);
    });
  });
})();
