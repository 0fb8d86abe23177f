import { api, show } from "./api.js";

// The owner's page reads /api/analyses/<id>; a shared results page reads /api/embed/results/<token>.
const root = document.getElementById("analysis");
const API = root.dataset.api;
const LEFT = "#e07b00";
const RIGHT = "#0088b8";
const LEAN = "#333";
const RUNNING = new Set(["awaiting_upload", "awaiting_confirmation", "queued", "processing"]);
const WAITING = { awaiting_upload: "Waiting for the upload", awaiting_confirmation: "Waiting for the link in the confirmation email to be opened", queued: "Queued: waiting for a free analyser" };
const STEP = { probe: "Checking the video", track: "Finding the skier", pose: "Estimating the pose", smooth: "Smoothing", metrics: "Finding the turns", render: "Drawing the overlay" };
const KINDS = { video: "Overlay video (MP4)", landmarks_csv: "Pose per frame (CSV)", turns_csv: "Turns (CSV)", chart: "Chart (PNG)", results_json: "Everything (JSON)" };

const $ = (elementId) => document.getElementById(elementId);
const round = (value) => (value == null ? "–" : Math.round(value));

async function poll() {
  let analysis;
  try {
    analysis = (await api(API)).analysis;
  } catch (failure) {
    if (failure.status === 404) return fail("This analysis does not exist, or it is not yours.");
    $("status-text").textContent = `${failure.message} Retrying…`;
    return setTimeout(poll, 4000);
  }
  $("title").textContent = analysis.file_name || "Analysis";
  if (RUNNING.has(analysis.status)) {
    const step = analysis.status === "processing" ? `Analysing: ${STEP[analysis.step] || "working"}` : WAITING[analysis.status];
    $("status-text").textContent = `${step} (${Math.round(analysis.progress)}%)`;
    $("progress").value = analysis.progress;
    return setTimeout(poll, 2000);
  }
  $("progress-panel").hidden = true;
  if (analysis.status === "complete") return showResults(analysis);
  if (analysis.status === "no_skier_found") {
    const warning = analysis.results?.warnings?.slice(-1)[0];
    return fail(warning || "We could not find a skier in enough of the clip.");
  }
  fail(analysis.error || (analysis.status === "cancelled" ? "This analysis was cancelled." : "The analysis failed."), analysis.retryable);
}

function fail(reason, retryable = false) {
  $("progress-panel").hidden = true;
  $("failure").hidden = false;
  $("failure-reason").textContent = reason;
  if ($("retry")) $("retry").hidden = !retryable;
}

// Runs the failed analysis again (it resumes after its last completed step) and follows it.
async function retry() {
  $("retry").disabled = true;
  try {
    await api(`${API}/retry`, { method: "POST" });
  } catch (failure) {
    show($("retry-error"), failure.message);
    return;
  } finally {
    $("retry").disabled = false;
  }
  show($("retry-error"), "");
  $("failure").hidden = true;
  $("progress-panel").hidden = false;
  poll();
}

// What the analysis could not do well (e.g. the skier was lost for part of the clip).
function showWarnings(warnings) {
  $("warning-list").replaceChildren(...warnings.map((warning) => {
    const item = document.createElement("li");
    item.textContent = warning;
    return item;
  }));
  $("warnings").hidden = !warnings.length;
}

async function showResults(analysis) {
  $("results").hidden = false;
  showWarnings(analysis.results.warnings || []);
  const metrics = analysis.results.metrics;
  for (const side of ["overall", "left", "right"]) {
    $(`score-${side}`).textContent = round(metrics.summary[side]);
    show($(`reason-${side}`), metrics.summary[side] == null ? metrics.summary[`${side}_reason`] : "");
  }
  const video = $("video");
  video.src = (await api(`${API}/download/video`)).url;
  const anglesChart = drawAngles(analysis.results.series, metrics.turns, video);
  video.addEventListener("timeupdate", () => { anglesChart.$cursor = video.currentTime + (analysis.trim_start_s || 0); anglesChart.draw(); });
  drawScores(metrics.turns);
  fillTurns(metrics.turns);
  fillDownloads(analysis.artifacts);
}

const shading = {
  id: "turns",
  beforeDatasetsDraw(chart, _, options) {
    const { ctx, chartArea, scales } = chart;
    for (const turn of options.turns) {
      const from = scales.x.getPixelForValue(turn.start_s);
      const to = scales.x.getPixelForValue(turn.end_s);
      ctx.fillStyle = (turn.direction === "right" ? RIGHT : LEFT) + (turn.partial ? "12" : "26");
      ctx.fillRect(from, chartArea.top, to - from, chartArea.bottom - chartArea.top);
    }
  },
  afterDraw(chart) {
    if (chart.$cursor == null) return;
    const { ctx, chartArea, scales } = chart;
    const x = scales.x.getPixelForValue(chart.$cursor);
    ctx.save();
    ctx.strokeStyle = "#c00";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(x, chartArea.top);
    ctx.lineTo(x, chartArea.bottom);
    ctx.stroke();
    ctx.restore();
  },
};

function drawAngles(series, turns, video) {
  const points = (field) => series.time_s.map((t, i) => ({ x: t, y: series[field][i] }));
  const line = (label, field, color, width) => ({ label, data: points(field), borderColor: color, backgroundColor: color, borderWidth: width, pointRadius: 0, spanGaps: false });
  return new Chart($("angles-chart"), {
    type: "line",
    data: {
      datasets: [
        line("Inclination", "inclination_deg", LEAN, 2.5),
        line("Left edge angle", "left_edge_deg", LEFT, 1.5),
        line("Right edge angle", "right_edge_deg", RIGHT, 1.5),
        { type: "scatter", label: "Apex", data: turns.map((t) => ({ x: t.apex_s, y: t.peak_inclination_deg })), pointStyle: "triangle", pointRadius: 6, borderColor: LEAN, backgroundColor: LEAN },
      ],
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      interaction: { mode: "nearest", axis: "x", intersect: false },
      scales: { x: { type: "linear", title: { display: true, text: "time (s)" } }, y: { title: { display: true, text: "degrees (+ = skier's right)" } } },
      plugins: { turns: { turns } },
      onClick: (event, _, chart) => {
        const time = chart.scales.x.getValueForPixel(event.x);
        video.currentTime = Math.max(0, time - (series.time_s[0] || 0));
      },
    },
    plugins: [shading],
  });
}

function drawScores(turns) {
  const scored = turns.filter((turn) => turn.edge_similarity != null);
  new Chart($("turns-chart"), {
    type: "bar",
    data: {
      labels: scored.map((turn) => `${turn.index} ${turn.direction}`),
      datasets: [{ label: "Edge similarity", data: scored.map((turn) => turn.edge_similarity), backgroundColor: scored.map((turn) => (turn.direction === "right" ? RIGHT : LEFT)) }],
    },
    options: { animation: false, maintainAspectRatio: false, scales: { y: { min: 0, max: 100 } }, plugins: { legend: { display: false } } },
  });
}

function fillTurns(turns) {
  $("turn-rows").replaceChildren(...turns.map((turn) => {
    const row = document.createElement("tr");
    const score = turn.partial ? "partial" : round(turn.edge_similarity);
    for (const value of [turn.index, turn.direction, turn.start_s.toFixed(2), turn.apex_s.toFixed(2), turn.end_s.toFixed(2), Math.round(turn.peak_inclination_deg), score]) {
      const cell = document.createElement("td");
      cell.textContent = value;
      row.append(cell);
    }
    return row;
  }));
}

function fillDownloads(kinds) {
  $("downloads").replaceChildren(...kinds.filter((kind) => KINDS[kind]).map((kind) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.dataset.kind = kind;
    button.textContent = KINDS[kind];
    button.addEventListener("click", async () => {
      const link = await api(`${API}/download/${kind}`);
      window.location.assign(link.url);
    });
    item.append(button);
    return item;
  }));
}

$("retry")?.addEventListener("click", retry);
$("delete")?.addEventListener("click", () => $("confirm-delete").showModal());
$("confirm-delete")?.addEventListener("close", async () => {
  if ($("confirm-delete").returnValue !== "delete") return;
  await api(API, { method: "DELETE" });
  window.location.assign("/analyses");
});

poll();
