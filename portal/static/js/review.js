// HQ's review table of a settlement (templates/settlement/_review_table.html), by keyboard:
// j / k the next / previous line, o opens it, x selects it, a approves it as claimed, d opens
// its decision with "deny" chosen (a reason code is needed). Every action is also a plain
// button or form: without this file nothing is lost.
(function () {
  "use strict";
  var table = document.querySelector("[data-review-table]");
  if (!table) { return; }
  var rows = Array.prototype.slice.call(table.querySelectorAll("tbody[data-line]"));
  var bulk = document.getElementById("bulk-form");
  var counter = document.querySelector("[data-selected-count]");
  var pageBox = table.querySelector("[data-select-page]");
  var KEY = "settlement-review-focus:" + window.location.pathname;
  var current = -1;

  function boxes() {
    return Array.prototype.slice.call(table.querySelectorAll("[data-select-line]"));
  }

  function showCount() {
    var all = boxes();
    var ticked = all.filter(function (b) { return b.checked; }).length;
    if (counter) {
      var words = (counter.getAttribute("data-words") || "{n}").replace("{n}", ticked);
      counter.textContent = ticked ? words : "";
    }
    if (pageBox) {
      pageBox.checked = all.length > 0 && ticked === all.length;
      pageBox.indeterminate = ticked > 0 && ticked < all.length;
    }
  }

  function focusRow(index, scroll) {
    if (!rows.length) { return; }
    index = Math.max(0, Math.min(rows.length - 1, index));
    if (current >= 0 && rows[current]) { rows[current].classList.remove("rv-focus"); }
    current = index;
    var row = rows[current];
    row.classList.add("rv-focus");
    row.setAttribute("aria-current", "true");
    rows.forEach(function (r, i) { if (i !== current) { r.removeAttribute("aria-current"); } });
    row.focus({ preventScroll: true });
    if (scroll !== false) { row.scrollIntoView({ block: "nearest" }); }
  }

  function details(row) { return row.querySelector("details.rv-details"); }

  function approve(row) {
    var form = row.querySelector("form[data-approve]");
    if (!form) { return; }
    // After the page comes back, the keyboard goes on from the next line.
    var next = rows[current + 1];
    try {
      window.sessionStorage.setItem(KEY, next ? next.getAttribute("data-line") : "");
    } catch (e) { /* private mode: the page simply starts at the top */ }
    if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
  }

  function deny(row) {
    var box = details(row);
    if (!box) { return; }
    box.open = true;
    var decide = row.querySelector("form[action*='/decide'] select[name=decision]");
    if (!decide) { return; }
    var inner = decide.closest("details");
    if (inner) { inner.open = true; }
    decide.value = "denied";
    var reason = decide.form.querySelector("select[name=reason_code]");
    (reason || decide).focus();
  }

  function typing(target) {
    if (!target || !target.closest) { return false; }
    if (target.isContentEditable) { return true; }
    var field = target.closest("input, select, textarea");
    return !!field && !(field.type === "checkbox" || field.type === "radio");
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    var row = rows[current];
    switch (event.key) {
      case "j": focusRow(current + 1); break;
      case "k": focusRow(current < 0 ? 0 : current - 1); break;
      case "o": case "Enter":
        if (!row || event.target.closest("a, button, summary")) { return; }
        details(row).open = !details(row).open; break;
      case "x":
        if (!row) { return; }
        var box = row.querySelector("[data-select-line]");
        if (box) { box.checked = !box.checked; showCount(); }
        break;
      case "a": if (row) { approve(row); } break;
      case "d": if (row) { deny(row); } break;
      default: return;
    }
    event.preventDefault();
  });

  rows.forEach(function (row, i) {
    row.addEventListener("click", function (event) {
      if (!event.target.closest("a, button, input, select, textarea, summary, label")) {
        focusRow(i, false);
      }
    });
  });

  table.addEventListener("change", function (event) {
    if (event.target.matches("[data-select-line]")) { showCount(); }
  });
  if (pageBox) {
    pageBox.addEventListener("change", function () {
      boxes().forEach(function (b) { b.checked = pageBox.checked; });
      showCount();
    });
  }
  if (bulk && counter) { showCount(); }

  // Where the keyboard was: the line after the one just approved, else the line in the address.
  var wanted = null;
  try {
    wanted = window.sessionStorage.getItem(KEY);
    window.sessionStorage.removeItem(KEY);
  } catch (e) { wanted = null; }
  if (!wanted && window.location.hash.indexOf("#line-") === 0) {
    wanted = window.location.hash.slice(6);
  }
  if (wanted) {
    for (var i = 0; i < rows.length; i += 1) {
      if (rows[i].getAttribute("data-line") === wanted) { focusRow(i); break; }
    }
  }
}());
