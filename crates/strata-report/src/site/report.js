// strata report: sorting and filtering of tables, nothing else. Every page
// reads the same without it.
"use strict";
(function () {
  function cellValue(row, column) {
    var cell = row.children[column];
    if (!cell) { return ""; }
    var value = cell.getAttribute("data-value");
    return value !== null ? parseFloat(value) : cell.textContent.trim().toLowerCase();
  }

  function makeSortable(table) {
    var heads = table.querySelectorAll("thead th");
    heads.forEach(function (head, column) {
      head.setAttribute("aria-sort", "none");
      head.tabIndex = 0;
      function sort() {
        var ascending = head.getAttribute("aria-sort") !== "ascending";
        heads.forEach(function (h) { h.setAttribute("aria-sort", "none"); });
        head.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = cellValue(a, column), y = cellValue(b, column);
          var order = x < y ? -1 : x > y ? 1 : 0;
          return ascending ? order : -order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      }
      head.addEventListener("click", sort);
      head.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
      });
    });
  }

  function makeFilterable(table) {
    var label = document.createElement("label");
    label.className = "filter";
    label.textContent = "Filter: ";
    var input = document.createElement("input");
    input.type = "search";
    input.placeholder = "name, outcome, reason…";
    label.appendChild(input);
    table.parentNode.insertBefore(label, table);
    input.addEventListener("input", function () {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        var text = row.textContent.toLowerCase();
        row.hidden = !words.every(function (w) { return text.indexOf(w) >= 0; });
      });
    });
  }

  document.querySelectorAll("table.sortable").forEach(makeSortable);
  document.querySelectorAll("table.filterable").forEach(makeFilterable);
})();
