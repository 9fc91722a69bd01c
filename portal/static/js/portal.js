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
