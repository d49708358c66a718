// Sortable tables (our own few lines, no library): click a header of a table.sortable to sort by that column.
// A cell's data-sort attribute, when present, is the value sorted on; numbers sort as numbers.
document.addEventListener("DOMContentLoaded", () => {
  for (const table of document.querySelectorAll("table.sortable")) {
    table.querySelectorAll("thead th").forEach((header, column) => {
      header.addEventListener("click", () => {
        const ascending = header.getAttribute("aria-sort") !== "ascending";
        table.querySelectorAll("thead th").forEach((th) => th.removeAttribute("aria-sort"));
        header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        const body = table.tBodies[0];
        const key = (row) => {
          const cell = row.cells[column];
          const text = cell ? (cell.dataset.sort ?? cell.textContent.trim()) : "";
          const number = parseFloat(text);
          return Number.isNaN(number) ? text : number;
        };
        const rows = Array.from(body.rows).sort((a, b) => {
          const [x, y] = [key(a), key(b)];
          const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
          return ascending ? order : -order;
        });
        rows.forEach((row) => body.appendChild(row));
      });
    });
  }
});
