// Shared pieces of the dashboard's pages.
import { h } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
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

/**
 * A horizontal bar chart (Chart.js, loaded by the page as a classic script). The canvas is an image with a label;
 * the same figures are always in a table next to it, for screen readers and for copying.
 */
export function BarChart({ label, entries }) {
  const canvas = useRef(null);
  const chart = useRef(null);
  useEffect(() => {
    const Chart = globalThis.Chart;
    if (!Chart || !canvas.current) return undefined;
    chart.current = new Chart(canvas.current, {
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
    });
    return () => chart.current?.destroy();
  }, []);
  useEffect(() => {
    if (!chart.current) return;
    chart.current.data.labels = entries.map((e) => e[0]);
    chart.current.data.datasets[0].data = entries.map((e) => e[1]);
    chart.current.update();
  }, [JSON.stringify(entries)]);
  const height = Math.max(80, entries.length * 32 + 40);
  return html`<div class="chart" style=${`height:${height}px`}>
    <canvas ref=${canvas} role="img" aria-label=${`${label}: ${entries.map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`}></canvas>
  </div>`;
}

/** A confirmation dialog's replacement that keeps keyboard focus: the browser's own confirm(). */
export function confirmAction(text) {
  return globalThis.confirm(text);
}
