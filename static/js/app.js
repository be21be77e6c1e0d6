// Behaviour that htmx attributes do not cover. Kept out of the pages: the CSP forbids inline script.
(function () {
  "use strict";

  // --- Selections on list pages (templates/core/list/_actions.html) -------------------------
  // A selection belongs to one list and one filter (data-selection-key) and carries across its
  // pages, sorts and page sizes: the ids ticked on other pages are posted with the bulk action
  // as hidden fields. "Select all N matching" selects the filter itself (_all=1). It is kept in
  // sessionStorage, so that a reload or Back finds it too; another filter starts empty.
  var STORE = "unlinker:selection:";

  function listOf(element) {
    var form = element && element.closest ? element.closest("form") : null;
    var info = form && form.querySelector("#list-actions[data-selection-key]");
    return info ? {form: form, info: info} : null;
  }

  function load(key) {
    try {
      var saved = JSON.parse(sessionStorage.getItem(STORE + key) || "null");
      if (saved && Array.isArray(saved.ids)) return {ids: saved.ids.map(String), all: !!saved.all};
    } catch (error) { /* storage refused or garbled: start afresh */ }
    return {ids: [], all: false};
  }

  function save(key, selection) {
    try {
      if (!selection.ids.length && !selection.all) sessionStorage.removeItem(STORE + key);
      else sessionStorage.setItem(STORE + key, JSON.stringify(selection));
    } catch (error) { /* private mode without storage: the selection lives as long as the page */ }
  }

  function rowBoxes(form) {
    return Array.prototype.slice.call(form.querySelectorAll('input[type="checkbox"][name="pk"]'));
  }

  function plural(count, info) {
    return count.toLocaleString("en") + " " + (count === 1 ? info.dataset.noun : info.dataset.nouns);
  }

  // Ticks the page's boxes as the stored selection says, then says what is selected.
  function showSelection(list) {
    var info = list.info, form = list.form, key = info.dataset.selectionKey;
    var selection = load(key);
    var count = parseInt(info.dataset.count || "0", 10);
    var all = form.querySelector('input[name="_all"]');
    var boxes = rowBoxes(form);
    if (selection.all && !all && count > boxes.length) selection.all = false;
    if (all) all.checked = selection.all;
    boxes.forEach(function (box) {
      box.checked = selection.all || selection.ids.indexOf(box.value) !== -1;
    });
    var toggle = form.querySelector("[data-toggle-all]");
    if (toggle) toggle.checked = boxes.length > 0 && boxes.every(function (box) { return box.checked; });

    var status = form.querySelector("#selection-status");
    var text = "";
    if (selection.all) {
      text = "All " + plural(count, info) + " matching this filter selected, on every page";
    } else if (selection.ids.length) {
      var here = boxes.filter(function (box) { return box.checked; }).length;
      var elsewhere = selection.ids.length - here;
      text = plural(selection.ids.length, info) + " selected";
      if (elsewhere) text += " (" + here.toLocaleString("en") + " on this page, " + elsewhere.toLocaleString("en") + " on other pages)";
      if (selection.ids.length >= parseInt(info.dataset.selectionMax, 10)) {
        text += ". That is as many as can be ticked one by one: for more, filter and use “Select all matching”";
      }
    }
    if (status) {
      status.hidden = !text;
      status.querySelector("[data-selection-text]").textContent = text;
    }
    form.querySelectorAll("[data-needs-selection]").forEach(function (button) {
      button.disabled = !(selection.all || selection.ids.length);
    });
  }

  function showAll() {
    document.querySelectorAll("#list-actions[data-selection-key]").forEach(function (info) {
      showSelection(listOf(info));
    });
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches('input[name="pk"], input[name="_all"]')) {
      var list = listOf(target);
      if (!list) return;
      var key = list.info.dataset.selectionKey;
      var selection = load(key);
      if (target.name === "_all") {
        selection = {ids: [], all: target.checked};
      } else {
        if (selection.all) {
          // Unticking a row of "all matching" leaves the rows still ticked on this page.
          selection = {ids: rowBoxes(list.form).filter(function (box) { return box.checked; })
            .map(function (box) { return box.value; }), all: false};
        }
        var at = selection.ids.indexOf(target.value);
        var max = parseInt(list.info.dataset.selectionMax, 10);
        if (target.checked && at === -1) {
          if (selection.ids.length >= max) target.checked = false;
          else selection.ids.push(target.value);
        }
        if (!target.checked && at !== -1) selection.ids.splice(at, 1);
      }
      save(key, selection);
      if (!event.detail || !event.detail.fromToggle) showSelection(list);
      return;
    }
    // A header checkbox (data-toggle-all="name") ticks every row checkbox of that name in its form.
    var toggle = target.closest("[data-toggle-all]");
    if (toggle) {
      var form = toggle.form || toggle.closest("form");
      if (!form) return;
      form.querySelectorAll('input[type="checkbox"][name="' + toggle.dataset.toggleAll + '"]').forEach(function (box) {
        if (box.checked === toggle.checked) return;
        box.checked = toggle.checked;
        box.dispatchEvent(new CustomEvent("change", {bubbles: true, detail: {fromToggle: true}}));
      });
      var toggled = listOf(toggle);
      if (toggled) showSelection(toggled);
    }
  });

  document.addEventListener("click", function (event) {
    var clear = event.target.closest("[data-clear-selection]");
    if (!clear) return;
    var list = listOf(clear);
    if (!list) return;
    save(list.info.dataset.selectionKey, {ids: [], all: false});
    showSelection(list);
  });

  // A bulk action posts the rows ticked on other pages too; the selection is then handed over
  // (to the plan page), so it is forgotten here.
  document.addEventListener("submit", function (event) {
    var list = listOf(event.target);
    if (!list || event.target.method.toLowerCase() !== "post") return;
    var key = list.info.dataset.selectionKey;
    var selection = load(key);
    if (!selection.all) {
      var shown = rowBoxes(list.form).map(function (box) { return box.value; });
      selection.ids.forEach(function (id) {
        if (shown.indexOf(id) !== -1) return;
        var field = document.createElement("input");
        field.type = "hidden";
        field.name = "pk";
        field.value = id;
        field.setAttribute("data-carried", "");
        list.form.appendChild(field);
      });
    }
    save(key, {ids: [], all: false});
  });
  // Back to a list kept in the browser's memory: the carried fields must not be posted twice.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("input[data-carried]").forEach(function (field) { field.remove(); });
  });

  // --- Other behaviour ------------------------------------------------------------------------

  // A control marked data-submit-on-change (rows per page) applies its form at once.
  document.addEventListener("change", function (event) {
    var control = event.target.closest("[data-submit-on-change]");
    if (control && control.form) control.form.requestSubmit();
  });

  // Bulk buttons (data-needs-selection) outside a list stay disabled until a box is ticked in
  // their form: an empty post would only lead to a page saying nothing was selected.
  function syncBulkButtons(form) {
    if (listOf(form.querySelector("#list-actions") || form)) return;  // lists: showSelection
    var buttons = form.querySelectorAll("[data-needs-selection]");
    if (!buttons.length) return;
    var selected = form.querySelector('input[name="pk"]:checked, input[name="_all"]:checked');
    buttons.forEach(function (button) { button.disabled = !selected; });
  }
  function syncAll() {
    document.querySelectorAll("form").forEach(syncBulkButtons);
    showAll();
  }
  document.addEventListener("change", function (event) {
    if (event.target.form) syncBulkButtons(event.target.form);
  });
  document.addEventListener("DOMContentLoaded", syncAll);
  document.addEventListener("htmx:afterSettle", syncAll);
  document.addEventListener("htmx:historyRestore", syncAll);
  window.addEventListener("pageshow", syncAll);

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
