// Shared pieces of the dashboard's pages.
import { h } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import { num, pct, phase as phaseLabel, status as statusLabel } from './format.js';

export const html = htm.bind(h);

export const link = (hash) => `#${hash}`;

export function PhaseBadge({ phase }) {
  return html`<span class=${`badge phase-${phase}`}>${phaseLabel(phase)}</span>`;
}

export function StatusBadge({ status }) {
  return html`<span class=${`badge status-${status}`}>${statusLabel(status)}</span>`;
}

/** An error the API answered (its message names the field or the reason), announced to screen readers. */
export function ErrorNote({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.message || String(error)}</p>`;
}

export function Loading({ what }) {
  return html`<p class="muted" role="status">Loading ${what}…</p>`;
}

/** KPI tiles: a description list, so each figure reads with its name. */
export function Kpis({ items, label }) {
  return html`<dl class="kpis" aria-label=${label}>
    ${items.map(
      (k) => html`<div class=${`kpi ${k.tone || ''}`} data-kpi=${k.id}>
        <dt>${k.label}</dt>
        <dd>${k.percent ? pct(k.value) : num(k.value)}</dd>
      </div>`,
    )}
  </dl>`;
}

/** One colour: the bars' order and the table carry the meaning, not a colour code. */
const BAR_COLOUR = '#1d4ed8';

let chartJs = null;

/**
 * Chart.js, loaded the first time a chart is drawn: a classic script (it defines globalThis.Chart) added to the page
 * then, at its versioned URL from the import map (api/dashboard-routes.ts). The page shows its figures without waiting
 * for it; its charts draw themselves when it has run. A failed load is tried again by the next chart.
 */
export function loadChartJs() {
  if (globalThis.Chart) return Promise.resolve(globalThis.Chart);
  chartJs ??= new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = import.meta.resolve('./chart.umd.min.js');
    script.async = true;
    script.onload = () => (globalThis.Chart ? resolve(globalThis.Chart) : reject(new Error('Chart.js loaded without defining Chart')));
    script.onerror = () => {
      chartJs = null;
      script.remove();
      reject(new Error('Chart.js did not load'));
    };
    document.head.append(script);
  });
  return chartJs;
}

/** Chart.js once it has loaded (null until then: the chart's canvas, its label and its table are there already). */
export function useChartJs() {
  const [Chart, setChart] = useState(() => globalThis.Chart ?? null);
  useEffect(() => {
    if (Chart) return undefined;
    let gone = false;
    loadChartJs().then(
      (c) => !gone && setChart(() => c),
      // Without the library the figures are still in the table next to the chart.
      () => undefined,
    );
    return () => {
      gone = true;
    };
  }, []);
  return Chart;
}

/**
 * A Chart.js chart on the canvas of `canvas`, made by `config()` once the library has loaded (useChartJs), then given
 * its data by `fill(chart)` whenever `dataKey` changes, and also as soon as it is made: a chart drawn after Chart.js
 * arrives takes the figures the page already shows.
 */
export function useChart(canvas, config, fill, dataKey) {
  const chart = useRef(null);
  const Chart = useChartJs();
  useEffect(() => {
    if (!Chart || !canvas.current) return undefined;
    chart.current = new Chart(canvas.current, config());
    return () => {
      chart.current?.destroy();
      chart.current = null;
    };
  }, [Chart]);
  useEffect(() => {
    if (!chart.current) return;
    fill(chart.current);
    chart.current.update();
  }, [Chart, dataKey]);
}

/**
 * A horizontal bar chart (Chart.js, loaded when first needed: useChartJs). The canvas is an image with a label; the
 * same figures are always in a table next to it, for screen readers and for copying.
 */
export function BarChart({ label, entries }) {
  const canvas = useRef(null);
  useChart(
    canvas,
    () => ({
      type: 'bar',
      data: { labels: [], datasets: [{ label, data: [], backgroundColor: BAR_COLOUR }] },
      options: {
        indexAxis: 'y',
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { display: false } },
        scales: { x: { beginAtZero: true, ticks: { precision: 0, color: '#1f2937' } }, y: { ticks: { color: '#1f2937' } } },
      },
    }),
    (chart) => {
      chart.data.labels = entries.map((e) => e[0]);
      chart.data.datasets[0].data = entries.map((e) => e[1]);
    },
    JSON.stringify(entries),
  );
  const height = Math.max(80, entries.length * 32 + 40);
  return html`<div class="chart" style=${`height:${height}px`}>
    <canvas ref=${canvas} role="img" aria-label=${`${label}: ${entries.map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`}></canvas>
  </div>`;
}

/** A confirmation dialog's replacement that keeps keyboard focus: the browser's own confirm(). */
export function confirmAction(text) {
  return globalThis.confirm(text);
}
