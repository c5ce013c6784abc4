// Progressive enhancement only: every page works without this file.
// "/" jumps to the page's search box (as on GitHub or Gmail), unless typing in a field.
document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target instanceof HTMLElement && target.closest("input, textarea, select")) return;
  const search = document.querySelector("[data-shortcut='/']");
  if (search instanceof HTMLElement) {
    event.preventDefault();
    search.focus();
  }
});
