// Small behaviours without inline script (the Content-Security-Policy forbids it).
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) { event.preventDefault(); return; }
  // One click, one request: disable the buttons of a form that is on its way.
  form.querySelectorAll("button[type=submit], input[type=submit]").forEach(function (b) {
    window.setTimeout(function () { b.disabled = true; }, 0);
  });
});
document.addEventListener("change", function (event) {
  if (event.target.matches("[data-autosubmit]")) { event.target.form.submit(); }
});
// Job progress: poll the JSON endpoint until the job has finished, then reload once.
document.querySelectorAll("[data-job-progress]").forEach(function (box) {
  var url = box.getAttribute("data-job-progress");
  var bar = box.querySelector("progress");
  function field(name, value) {
    var el = box.querySelector('[data-job-field="' + name + '"]');
    if (el && value !== undefined && value !== null) { el.textContent = value; }
  }
  function poll() {
    fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (p) {
      bar.value = p.percent; field("percent", p.percent); field("done", p.done);
      field("total", p.total); field("note", p.note);
      if (p.status === "succeeded" || p.status === "failed") { window.location.reload(); return; }
      window.setTimeout(poll, 1000);
    }).catch(function () { window.setTimeout(poll, 3000); });
  }
  var status = box.querySelector('[data-job-field="status"]');
  if (status && box.querySelector("progress").value < 100 && !box.querySelector(".alert-danger")) {
    window.setTimeout(poll, 500);
  }
});
// Lists as cards on a phone: every table of the page's lists (.table in <main>) gets its column
// headers as each cell's data-label; portal.css lays the rows out as labelled cards at 576
// pixels and less. A table outside a .table-responsive is put in one first, so that a table
// without headers scrolls sideways instead of widening the page. Without script the tables
// are as the templates wrote them (a .table-responsive scrolls sideways).
document.querySelectorAll("main table.table").forEach(function (table) {
  var box = table.parentElement;
  if (!box.classList.contains("table-responsive")) {
    box = document.createElement("div");
    box.className = "table-responsive table-wrapped";
    table.parentNode.insertBefore(box, table);
    box.appendChild(table);
  }
  var head = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
  if (!head || table.closest("[data-no-cards]")) { return; }
  var labels = [];
  Array.prototype.forEach.call(head.cells, function (cell) {
    var text = cell.textContent.replace(/[▲▼]/g, "").replace(/\s+/g, " ").trim();
    for (var i = 0; i < (cell.colSpan || 1); i++) { labels.push(text); }
  });
  Array.prototype.forEach.call(table.tBodies, function (body) {
    Array.prototype.forEach.call(body.rows, function (row) {
      var column = 0;
      Array.prototype.forEach.call(row.cells, function (cell) {
        if (!cell.hasAttribute("data-label")) {  // a cell across columns (a total) has none
          cell.setAttribute("data-label", cell.colSpan > 1 ? "" : labels[column] || "");
        }
        column += cell.colSpan || 1;
      });
    });
  });
  box.classList.add("table-cards");
});
