// The work order form (templates/service/order_form.html), without inline script.
// htmx swaps the fields that follow the product line; this file only (1) hides the no-script
// "Update choices" button once htmx runs and (2) filters the repair code list as one types.
(function () {
  "use strict";
  if (window.htmx) {
    document.querySelectorAll("[data-nojs-only]").forEach(function (el) { el.hidden = true; });
  }
  var search = document.querySelector("input[data-filter-for]");
  if (!search) { return; }
  function filter() {
    var list = document.querySelector(search.getAttribute("data-filter-for"));
    if (!list) { return; }
    var words = search.value.trim().toLowerCase();
    list.querySelectorAll("[data-filter-item]").forEach(function (item) {
      var box = item.querySelector("input");
      // A ticked code stays in sight: what will be saved is never hidden.
      item.hidden = words !== "" && !(box && box.checked) &&
        item.textContent.toLowerCase().indexOf(words) < 0;
    });
  }
  search.hidden = false;
  search.addEventListener("input", filter);
  search.addEventListener("keydown", function (event) {
    if (event.key === "Enter") { event.preventDefault(); }  // Enter here searches, never saves
  });
  document.body.addEventListener("htmx:afterSettle", filter);
})();
