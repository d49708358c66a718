// The dashboard's plots: each <figure data-figure="URL"> holds the plot as a PNG. Once plotly.js (served by this
// app, /static/vendor/plotly.min.js) has loaded, the PNG gives way to the interactive figure from URL: hovering a
// point shows its candidate, a click opens the candidate's page (the point's customdata). Without plotly.js, or if
// the figure cannot be fetched, the PNG stays.
"use strict";

async function drawFigure(holder) {
  const response = await fetch(holder.dataset.figure, { credentials: "same-origin" });
  if (!response.ok) return;
  const figure = await response.json();
  const target = document.createElement("div");
  target.className = "plotly-figure";
  holder.appendChild(target); // plotly measures the element: it must be in the page
  try {
    await window.Plotly.newPlot(target, figure.data, figure.layout, { displayModeBar: false, responsive: true });
  } catch (error) {
    target.remove();
    return;
  }
  const png = holder.querySelector("img");
  if (png) png.remove();
  target.on("plotly_click", (event) => {
    const url = event.points.length ? event.points[0].customdata : null;
    if (typeof url === "string" && url.startsWith("/")) window.location.assign(url);
  });
  holder.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", () => {
  if (!window.Plotly) return;
  document.querySelectorAll("figure[data-figure]").forEach((holder) => { drawFigure(holder); });
});
