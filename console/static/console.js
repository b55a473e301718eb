// Draw each chart from the JSON spec the server embedded next to it.
document.querySelectorAll("[data-chart]").forEach(function (element) {
  var spec = JSON.parse(document.getElementById(element.dataset.chart).textContent);
  Plotly.newPlot(element, spec.data, spec.layout, {
    displaylogo: false,
    responsive: true,
    modeBarButtonsToRemove: ["select2d", "lasso2d"],
  });
});
