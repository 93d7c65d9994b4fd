// Neuron Data Docs: the few behaviours GX's pages got from jQuery and Bootstrap (served from CDNs), in plain JS.
function neuronToggle(selector, show) {
  document.querySelectorAll(selector).forEach(function (el) { el.style.display = show ? "" : "none"; });
}
function showAllValidations() {
  neuronToggle(".hide-succeeded-validation-target", true);
  document.querySelectorAll(".hide-succeeded-validation-target-child").forEach(function (el) {
    el.parentElement.style.display = "";
  });
}
function hideSucceededValidations() {
  neuronToggle(".hide-succeeded-validation-target", false);
  document.querySelectorAll(".hide-succeeded-validation-target-child").forEach(function (el) {
    el.parentElement.style.display = "none";
  });
}
document.addEventListener("click", function (event) {
  var toggle = event.target.closest('[data-toggle="collapse"]');
  if (!toggle) { return; }
  var target = toggle.getAttribute("data-target") || toggle.getAttribute("href");
  var el = target && target.charAt(0) === "#" ? document.getElementById(target.slice(1)) : null;
  if (el) {
    event.preventDefault();
    el.classList.toggle("show");
    toggle.setAttribute("aria-expanded", el.classList.contains("show") ? "true" : "false");
  }
});
