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
