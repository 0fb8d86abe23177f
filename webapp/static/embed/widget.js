// Poser's partner widget. A partner's page loads it with
//   <script src="https://POSER/embed/widget.js" data-partner="SLUG" async></script>
// and it renders, inside a shadow root so neither page's styles leak into the other, the whole
// visit: choose and trim a clip, upload it, confirm by email, follow the analysis, see the result.
(() => {
  const script = document.currentScript;
  const slug = script?.dataset.partner;
  if (!slug) {
    console.error('Poser widget: add data-partner="your-partner-name" to its script tag.');
    return;
  }
  const base = new URL(script.src).origin;
  const endpoint = `${base}/api/embed/${encodeURIComponent(slug)}`;
  const stored = `poser:${slug}`;
  const TYPES = { mp4: "video/mp4", m4v: "video/mp4", mov: "video/quicktime", webm: "video/webm" };
  const STEPS = { probe: "Checking the video", track: "Finding you in the clip", pose: "Estimating your pose", smooth: "Smoothing", metrics: "Finding your turns", render: "Drawing the overlay" };
  const MIN_TRIM_S = 0.5;

  const host = document.createElement("div");
  host.className = "poser-widget";
  script.after(host);
  const root = host.attachShadow({ mode: "open" });
  root.innerHTML = `
    <link rel="stylesheet" href="${base}/embed/widget.css">
    <section class="poser" aria-live="polite">
      <header><strong>Ski technique analysis</strong> <span class="by">by Poser<span data-id="partner"></span></span></header>
      <div data-view="loading"><p>Loading…</p></div>
      <div data-view="unavailable" hidden><p class="error" data-id="unavailable"></p></div>
      <form data-view="choose" hidden novalidate>
        <label class="drop">Choose a video of your skiing
          <input type="file" name="file" accept="video/mp4,video/quicktime,video/webm,.mp4,.mov,.m4v,.webm">
          <span class="hint" data-id="limits"></span>
        </label>
        <div data-id="preview" hidden>
          <div class="stage"><video data-id="video" controls muted playsinline preload="metadata"></video><span class="marker" data-id="marker" hidden></span></div>
          <p class="hint" data-id="trim-summary"></p>
          <div class="row">
            <label>Start (s) <input name="start" type="number" min="0" step="0.1" value="0"></label>
            <button type="button" class="secondary" data-action="start-here">Start here</button>
            <label>End (s) <input name="end" type="number" min="0" step="0.1"></label>
            <button type="button" class="secondary" data-action="end-here">End here</button>
          </div>
          <p><button type="button" class="link" data-action="mark">Others in the shot? Click yourself in the video</button> <span class="hint" data-id="mark-status"></span></p>
        </div>
        <label>Your email <input name="email" type="email" autocomplete="email" required placeholder="you@example.com"></label>
        <p class="hint">We email you a link that starts the analysis, and the results.</p>
        <p class="error" data-id="choose-error" role="alert" hidden></p>
        <button type="submit" data-action="upload">Upload and analyse</button>
      </form>
      <div data-view="uploading" hidden>
        <p>Uploading <span data-id="upload-percent">0%</span></p>
        <progress data-id="upload-bar" max="100" value="0"></progress>
        <p class="error" data-id="upload-error" role="alert" hidden></p>
        <button type="button" data-action="retry-upload" hidden>Retry the upload</button>
      </div>
      <div data-view="email" hidden>
        <h3>Check your email to start</h3>
        <p>We sent a link to <strong data-id="email"></strong>. Open it to start the analysis; this box then shows its progress.</p>
      </div>
      <div data-view="progress" hidden>
        <p data-id="step">Queued: waiting for a free analyser</p>
        <progress data-id="progress-bar" max="100" value="0"></progress>
      </div>
      <div data-view="result" hidden>
        <div class="score"><span>Edge similarity</span><strong data-id="score">–</strong><span>/ 100</span></div>
        <p data-id="score-range" class="range" hidden></p>
        <p data-id="score-note" class="hint" hidden></p>
        <p data-id="warnings" class="warning" role="note" hidden></p>
        <div data-id="finding" class="finding" hidden>
          <p><strong data-id="finding-title"></strong></p>
          <p data-id="finding-text"></p>
          <p><strong>Try:</strong> <span data-id="finding-try"></span></p>
        </div>
        <p><span data-id="turns">0</span> turns analysed.</p>
        <video data-id="overlay" controls muted playsinline preload="metadata"></video>
        <p><a data-id="results-link" target="_blank" rel="noopener">See the full results</a></p>
        <button type="button" class="secondary" data-action="again">Analyse another clip</button>
      </div>
      <div data-view="failed" hidden>
        <h3>We could not analyse this clip</h3>
        <p data-id="failure"></p>
        <p class="error" data-id="retry-error" role="alert" hidden></p>
        <button type="button" data-action="retry" hidden>Run it again</button>
        <button type="button" class="secondary" data-action="again">Try another clip</button>
      </div>
      <p class="hint notice" data-id="notice" hidden></p>
    </section>`;

  const $ = (id) => root.querySelector(`[data-id="${id}"]`);
  const form = root.querySelector('[data-view="choose"]');
  let settings;
  let hint = null;
  let pending = null; // the upload to retry after a network failure

  function view(name) {
    for (const element of root.querySelectorAll("[data-view]")) element.hidden = element.dataset.view !== name;
  }
  function say(id, text) {
    $(id).textContent = text || "";
    $(id).hidden = !text;
  }

  class WidgetError extends Error {}
  async function call(path, { method = "GET", body, visitor } = {}) {
    const headers = { Accept: "application/json" };
    if (body) headers["Content-Type"] = "application/json";
    if (visitor) headers["X-Poser-Visitor"] = visitor;
    let response;
    try {
      response = await fetch(`${endpoint}${path}`, { method, headers, body: body && JSON.stringify(body), credentials: "omit" });
    } catch {
      throw new WidgetError("Cannot reach Poser. Check your connection and try again.");
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw Object.assign(new WidgetError(data.error?.message || `Request failed (${response.status}).`), { status: response.status });
    return data;
  }

  const remember = (submission) => sessionStorage.setItem(stored, JSON.stringify(submission));
  const recall = () => JSON.parse(sessionStorage.getItem(stored) || "null");
  const forget = () => sessionStorage.removeItem(stored);

  // Choosing and trimming the clip.
  const typeOf = (file) => TYPES[file.name.split(".").pop().toLowerCase()] || "";
  const video = $("video");

  function choose(file) {
    say("choose-error", "");
    hint = null;
    $("marker").hidden = true;
    say("mark-status", "");
    if (!settings.types.includes(typeOf(file))) return refuse("This is not a video we can analyse: choose an MP4, MOV or WebM file.");
    if (file.size > settings.max_upload_bytes) {
      return refuse(`This video is ${(file.size / 1048576).toFixed(0)} MB; the limit here is ${(settings.max_upload_bytes / 1048576).toFixed(0)} MB. Trim it on your phone first.`);
    }
    $("preview").hidden = false;
    form.elements.start.value = 0;
    form.elements.end.value = settings.max_trim_s;
    video.src = URL.createObjectURL(file);
    summarise();
  }
  function refuse(message) {
    form.elements.file.value = "";
    $("preview").hidden = true;
    say("choose-error", message);
  }
  video.addEventListener("loadedmetadata", () => {
    form.elements.end.value = Math.min(video.duration, settings.max_trim_s).toFixed(1);
    form.elements.end.max = form.elements.start.max = video.duration.toFixed(1);
    summarise();
  });
  video.addEventListener("error", () => say("trim-summary", "Your browser cannot preview this video; it can still be analysed. Set the part to analyse in seconds."));

  function trimWindow() {
    const start = Number(form.elements.start.value);
    const end = Number(form.elements.end.value);
    if (!Number.isFinite(start) || !Number.isFinite(end) || start < 0 || end - start < MIN_TRIM_S) return { error: `The end must be at least ${MIN_TRIM_S} s after the start.` };
    if (end - start > settings.max_trim_s + 1e-6) return { error: `Choose at most ${settings.max_trim_s} s to analyse; this part is ${(end - start).toFixed(1)} s.` };
    if (Number.isFinite(video.duration) && start >= video.duration) return { error: "The start is after the end of the video." };
    return { start, end };
  }
  function summarise() {
    const trim = trimWindow();
    say("trim-summary", trim.error || `Analysing ${trim.start.toFixed(1)}–${trim.end.toFixed(1)} s (${(trim.end - trim.start).toFixed(1)} s of at most ${settings.max_trim_s} s).`);
  }
  form.elements.start.addEventListener("input", summarise);
  form.elements.end.addEventListener("input", summarise);
  root.querySelector('[data-action="start-here"]').addEventListener("click", () => { form.elements.start.value = video.currentTime.toFixed(1); summarise(); });
  root.querySelector('[data-action="end-here"]').addEventListener("click", () => { form.elements.end.value = video.currentTime.toFixed(1); summarise(); });

  // A click on the skier, in the video's own pixels (the preview is letterboxed).
  let marking = false;
  root.querySelector('[data-action="mark"]').addEventListener("click", () => {
    marking = true;
    video.pause();
    say("mark-status", "Now click yourself in the video.");
  });
  video.addEventListener("click", (event) => {
    if (!marking || !video.videoWidth) return;
    event.preventDefault();
    marking = false;
    const box = video.getBoundingClientRect();
    const scale = Math.min(box.width / video.videoWidth, box.height / video.videoHeight);
    const left = (box.width - video.videoWidth * scale) / 2;
    const top = (box.height - video.videoHeight * scale) / 2;
    const x = (event.clientX - box.left - left) / scale;
    const y = (event.clientY - box.top - top) / scale;
    if (x < 0 || y < 0 || x > video.videoWidth || y > video.videoHeight) return say("mark-status", "That was outside the picture; try again.");
    hint = { time_s: video.currentTime, point: [x, y] };
    Object.assign($("marker").style, { left: `${event.clientX - box.left}px`, top: `${event.clientY - box.top}px` });
    $("marker").hidden = false;
    say("mark-status", `Marked at ${video.currentTime.toFixed(1)} s.`);
  });

  form.elements.file.addEventListener("change", () => form.elements.file.files[0] && choose(form.elements.file.files[0]));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = form.elements.file.files[0];
    const email = form.elements.email.value.trim();
    const trim = trimWindow();
    if (!file) return say("choose-error", "Choose a video first.");
    if (trim.error) return say("choose-error", trim.error);
    if (!form.elements.email.checkValidity() || !email) return say("choose-error", "Enter a valid email address.");
    root.querySelector('[data-action="upload"]').disabled = true;
    try {
      const submitted = await call("/submit", {
        method: "POST",
        body: { email, filename: file.name, content_type: typeOf(file), size: file.size, trim_start_s: trim.start, trim_end_s: trim.end, skier_hint: hint || undefined },
      });
      pending = { file, email, submission: { id: submitted.analysis_id, key: submitted.visitor_key, email }, upload: submitted.upload };
      await upload();
    } catch (failure) {
      view("choose");
      say("choose-error", failure.message);
    } finally {
      root.querySelector('[data-action="upload"]').disabled = false;
    }
  });

  // Uploading: a PUT with progress events, which fetch does not give.
  function put(target, file) {
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      request.open(target.method, target.url);
      for (const [name, value] of Object.entries(target.headers)) request.setRequestHeader(name, value);
      request.upload.addEventListener("progress", (event) => {
        const percent = Math.round((100 * event.loaded) / event.total);
        $("upload-bar").value = percent;
        $("upload-percent").textContent = `${percent}%`;
      });
      request.addEventListener("load", () => (request.status < 300 ? resolve() : reject(new WidgetError(`The upload was refused (${request.status}). Please try again.`))));
      request.addEventListener("error", () => reject(new WidgetError("The upload failed: check your connection, then retry.")));
      request.send(file);
    });
  }
  async function upload() {
    view("uploading");
    say("upload-error", "");
    root.querySelector('[data-action="retry-upload"]').hidden = true;
    try {
      await put(pending.upload, pending.file);
      await call("/upload-complete", { method: "POST", body: { analysis_id: pending.submission.id }, visitor: pending.submission.key });
    } catch (failure) {
      say("upload-error", failure.message);
      root.querySelector('[data-action="retry-upload"]').hidden = false;
      return;
    }
    remember(pending.submission);
    follow(pending.submission);
    pending = null;
  }
  root.querySelector('[data-action="retry-upload"]').addEventListener("click", upload);

  // Following the analysis until it ends.
  async function follow(submission) {
    let state;
    try {
      state = await call(`/status/${submission.id}`, { visitor: submission.key });
      say("notice", "");
    } catch (failure) {
      if (failure.status === 404) return again();
      say("notice", `${failure.message} Retrying…`);
      return setTimeout(() => follow(submission), 5000);
    }
    if (state.status === "awaiting_confirmation" || state.status === "awaiting_upload") {
      $("email").textContent = submission.email;
      view("email");
      return setTimeout(() => follow(submission), 3000);
    }
    if (state.status === "queued" || state.status === "processing") {
      $("step").textContent = state.status === "queued" ? "Queued: waiting for a free analyser" : `${STEPS[state.step] || "Analysing"} (${Math.round(state.progress)}%)`;
      $("progress-bar").value = state.progress;
      view("progress");
      return setTimeout(() => follow(submission), 2000);
    }
    if (state.status === "complete") return showResult(submission);
    $("failure").textContent = state.message || (state.status === "cancelled" ? "The analysis was cancelled." : "The analysis failed.");
    root.querySelector('[data-action="retry"]').hidden = !state.retryable;
    view("failed");
  }

  // Runs a failed analysis again (it resumes after its last completed step).
  root.querySelector('[data-action="retry"]').addEventListener("click", async () => {
    const submission = recall();
    try {
      await call(`/retry/${submission.id}`, { method: "POST", visitor: submission.key });
    } catch (failure) {
      return say("retry-error", failure.message);
    }
    say("retry-error", "");
    follow(submission);
  });

  async function showResult(submission) {
    let card;
    try {
      card = await call(`/feedback/${submission.id}`, { visitor: submission.key });
    } catch (failure) {
      say("notice", `${failure.message} Retrying…`);
      return setTimeout(() => showResult(submission), 5000);
    }
    // The best run of turns when there are enough, else the mean of every precisely scored turn.
    const scores = card.edge_similarity;
    const name = scores.overall != null ? "overall" : scores.mean != null ? "mean" : null;
    $("score").textContent = name ? Math.round(scores[name]) : "–";
    const low = name && scores[`${name}_low`], high = name && scores[`${name}_high`];
    say("score-range", name && low != null ? `90% interval ${Math.round(low)}–${Math.round(high)}` : "");
    say("score-note", name === "mean" ? `Mean of ${scores.turns} turn${scores.turns === 1 ? "" : "s"}; ${card.edge_similarity_note}.` : name ? "" : card.edge_similarity_note);
    say("warnings", (card.warnings || []).join(" "));
    // The first-ranked finding: what to work on (or what went well), and one thing to try.
    const top = card.top_finding;
    $("finding").hidden = !top;
    if (top) {
      $("finding-title").textContent = top.title;
      $("finding-text").textContent = top.text;
      $("finding-try").textContent = top.try;
    }
    $("turns").textContent = card.turns_analysed;
    if (card.video_url) $("overlay").src = card.video_url;
    $("results-link").href = card.results_url;
    view("result");
  }

  function again() {
    forget();
    form.elements.file.value = "";
    $("preview").hidden = true;
    video.removeAttribute("src");
    $("overlay").removeAttribute("src");
    view("choose");
  }
  for (const button of root.querySelectorAll('[data-action="again"]')) button.addEventListener("click", again);

  (async () => {
    try {
      settings = await call("/config");
    } catch {
      // A refused origin gets no CORS headers, so it looks the same as a network failure.
      say("unavailable", "The analysis widget could not start here: this site may not be allowed to use it, or Poser is unreachable.");
      return view("unavailable");
    }
    $("partner").textContent = ` for ${settings.partner.name}`;
    $("limits").textContent = `MP4, MOV or WebM, up to ${(settings.max_upload_bytes / 1048576).toFixed(0)} MB; at most ${settings.max_trim_s} s is analysed.`;
    const submission = recall();
    if (submission) follow(submission);
    else view("choose");
  })();
})();
