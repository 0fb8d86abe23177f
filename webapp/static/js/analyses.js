import { api, show } from "./api.js";

const $ = (elementId) => document.getElementById(elementId);
const rows = $("rows");
const label = { awaiting_upload: "Waiting for upload", awaiting_confirmation: "Waiting for email confirmation", queued: "Queued", processing: "Analysing", complete: "Complete", no_skier_found: "No skier found", failed: "Failed", cancelled: "Cancelled" };
const HEADLINE = "#1d2430";
const LEFT = "#e07b00";
const RIGHT = "#0088b8";
const GROUPS = { summary: "Edge similarity", sides: "Left and right turns", technique: "Technique", rhythm: "Rhythm" };
const CHANGE = { higher: "Higher", lower: "Lower", "no measurable change": "No measurable change", "not comparable": "Not comparable" };
let page = 1;
// The analyses ticked for comparison, by id, kept across pages.
const ticked = new Map();

const range = (low, high) => (low == null || high == null ? "" : ` (${Math.round(low)}–${Math.round(high)})`);
const when = (iso) => new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });

// The score a run is known by: the overall score, or the mean of its clean turns when it has too few.
function headline(point) {
  if (point.value == null) return "–";
  const mean = point.name === "mean_edge_similarity" ? `, mean of ${point.turns} turn${point.turns === 1 ? "" : "s"}` : "";
  return `${Math.round(point.value)}${range(point.low, point.high)}${mean}`;
}

async function load() {
  const data = await api(`/api/analyses?page=${page}&per_page=20`);
  rows.replaceChildren(...data.analyses.map((analysis) => {
    const row = document.createElement("tr");
    const pick = document.createElement("input");
    pick.type = "checkbox";
    pick.className = "compare-pick";
    pick.dataset.id = analysis.id;
    pick.disabled = analysis.status !== "complete";
    pick.checked = ticked.has(analysis.id);
    pick.setAttribute("aria-label", `Compare ${analysis.file_name || analysis.id}`);
    pick.addEventListener("change", () => {
      if (pick.checked) ticked.set(analysis.id, analysis);
      else ticked.delete(analysis.id);
      updateCompare();
    });
    const link = document.createElement("a");
    link.href = `/analyses/${analysis.id}`;
    link.textContent = analysis.file_name || analysis.id;
    const cells = [pick, link, when(analysis.created_at), label[analysis.status] || analysis.status, headline(analysis.headline)];
    row.replaceChildren(...cells.map((content) => {
      const cell = document.createElement("td");
      cell.append(content);
      return cell;
    }));
    row.cells[3].className = `status ${analysis.status}`;
    return row;
  }));
  $("empty").hidden = data.total > 0;
  $("page").textContent = data.pages > 1 ? `Page ${page} of ${data.pages}` : "";
  $("previous").disabled = page <= 1;
  $("next").disabled = page >= data.pages;
}

function updateCompare() {
  $("compare").disabled = ticked.size !== 2;
  $("compare-hint").textContent = ticked.size === 2 ? "" : ticked.size > 2 ? "Tick only two." : "Tick two complete analyses to see them side by side.";
}

// Whiskers from each point's interval low to high, a little apart per series.
const whiskers = {
  id: "whiskers",
  afterDatasetsDraw(chart) {
    const { ctx, scales } = chart;
    chart.data.datasets.forEach((dataset, index) => {
      const meta = chart.getDatasetMeta(index);
      if (meta.hidden) return;
      const shift = (index - 1) * 7;
      ctx.save();
      ctx.strokeStyle = dataset.borderColor;
      ctx.lineWidth = 1.5;
      meta.data.forEach((point, i) => {
        const [low, high] = dataset.intervals[i] || [];
        if (low == null || high == null) return;
        const x = point.x + shift;
        const top = scales.y.getPixelForValue(high);
        const bottom = scales.y.getPixelForValue(low);
        ctx.beginPath();
        ctx.moveTo(x, bottom); ctx.lineTo(x, top);
        ctx.moveTo(x - 4, bottom); ctx.lineTo(x + 4, bottom);
        ctx.moveTo(x - 4, top); ctx.lineTo(x + 4, top);
        ctx.stroke();
      });
      ctx.restore();
    });
  },
};

async function drawProgress() {
  const points = (await api("/api/analyses/history")).analyses;
  $("progress").hidden = !points.length;
  if (!points.length) return;
  const series = (name, colour, pick) => ({
    label: name,
    data: points.map((point) => pick(point).value),
    intervals: points.map((point) => [pick(point).low, pick(point).high]),
    notes: points.map((point) => pick(point)),
    borderColor: colour,
    backgroundColor: colour,
    pointRadius: 5,
    spanGaps: true,
  });
  const chart = new Chart($("progress-chart"), {
    type: "line",
    data: {
      labels: points.map((point) => when(point.created_at)),
      datasets: [
        series("Edge similarity", HEADLINE, (point) => point.headline),
        series("Left turns (mean)", LEFT, (point) => point.left),
        series("Right turns (mean)", RIGHT, (point) => point.right),
      ],
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      scales: { y: { min: 0, max: 100, title: { display: true, text: "edge similarity" } } },
      plugins: {
        tooltip: {
          callbacks: {
            title: (items) => `${points[items[0].dataIndex].file_name || "Analysis"}, ${items[0].label}`,
            label: (item) => {
              const note = item.dataset.notes[item.dataIndex];
              const turns = note.turns != null ? `, ${note.turns} turn${note.turns === 1 ? "" : "s"}` : "";
              return `${item.dataset.label}: ${Math.round(note.value)}${range(note.low, note.high)}${turns}`;
            },
          },
        },
      },
      onClick: (event, elements) => {
        if (elements.length) window.location.assign(`/analyses/${points[elements[0].index].id}`);
      },
    },
    plugins: [whiskers],
  });
  chart.$points = points;
}

async function compare() {
  // Oldest first: a change reads from the earlier run to the later.
  const [first, second] = [...ticked.values()].sort((a, b) => a.created_at.localeCompare(b.created_at));
  let data;
  try {
    data = await api(`/api/analyses/${first.id}/compare/${second.id}`);
  } catch (failure) {
    show($("compare-error"), failure.message);
    return;
  }
  show($("compare-error"), "");
  const name = (run) => `${run.file_name || "Analysis"}, ${when(run.created_at)}`;
  $("first-heading").textContent = name(data.first);
  $("second-heading").textContent = name(data.second);
  $("first-findings-heading").textContent = name(data.first);
  $("second-findings-heading").textContent = name(data.second);
  $("comparison-summary").textContent = data.changes
    ? `${data.changes} measurable change${data.changes === 1 ? "" : "s"} from the first run to the second; everything else: no measurable change.`
    : "No measurable change: every pair of intervals overlaps.";
  const lines = [];
  let group = null;
  for (const row of data.rows) {
    if (row.group !== group) {
      group = row.group;
      const heading = document.createElement("tr");
      const cell = document.createElement("th");
      cell.colSpan = 4;
      cell.scope = "colgroup";
      cell.textContent = GROUPS[group] || group;
      heading.append(cell);
      lines.push(heading);
    }
    const line = document.createElement("tr");
    line.dataset.name = row.name;
    for (const text of [row.label, row.first.text, row.second.text, CHANGE[row.change] || row.change]) {
      const cell = document.createElement("td");
      cell.textContent = text || "–";
      line.append(cell);
    }
    line.cells[3].className = `change ${row.measurable ? row.change : "same"}`;
    lines.push(line);
  }
  $("comparison-rows").replaceChildren(...lines);
  for (const side of ["first", "second"]) {
    const findings = data.findings[side];
    $(`${side}-findings`).replaceChildren(...(findings.length ? findings : [{ text: "No findings recorded." }]).map((finding) => {
      const item = document.createElement("li");
      item.textContent = finding.in_both ? `${finding.text} (in both runs)` : finding.text;
      if (finding.in_both) item.className = "in-both";
      return item;
    }));
  }
  $("comparison").hidden = false;
  $("comparison").scrollIntoView({ behavior: "smooth", block: "start" });
}

$("previous").addEventListener("click", () => { page -= 1; load(); });
$("next").addEventListener("click", () => { page += 1; load(); });
$("compare").addEventListener("click", compare);
load();
drawProgress();
