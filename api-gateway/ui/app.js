// Hopster's web page (/ui): submit clips and watch the jobs. Plain JavaScript, no build step,
// no external resources; served by the gateway with a strict Content-Security-Policy, so no
// inline scripts or styles, and nothing the server or the user wrote is ever parsed as HTML.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);

  const KEY_STORAGE = 'hopster.apiKey';
  const POLL_MS = 1000;
  const SLOW_POLL_MS = 5000; // a hidden tab, or no valid key yet
  const LIST_LIMIT = 50;
  const VIDEO_ID = /^[A-Za-z0-9_-]{1,128}$/;
  // What a header value may hold; a key outside it could never be sent.
  const KEY_CHARS = /^[\x21-\x7e]+$/;

  // Live updates: each active job is followed through `GET /v1/jobs/{id}/events` (Server-Sent
  // Events, one job document per event, the event named after the state), with an EventSource
  // (which cannot send headers, hence `?key=`). The poller carries on as the fallback.

  // The lists the page shows, the states and the error codes in words, come from the gateway
  // (`GET /v1/vocabulary`, public), which has them from the contract; none is copied here.
  // Only `network`, the page's own word for a server it cannot reach, is the page's.
  const TERMINAL = new Set();
  const EVENT_NAMES = [];
  const STATE_WORDS = {};
  const ERROR_WORDS = { network: 'The server could not be reached.' };
  const PROFILES = [];
  const ACCURACIES = [];
  // What each accuracy costs, in words (the modes themselves come from the vocabulary).
  const ACCURACY_WORDS = {
    frame: 'Exact to the frame: every frame is encoded again.',
    keyframe: 'Fast (a copy), but starts at the keyframe at or before the start. MP4 only.',
    smart: 'Exact to the frame at close to copy speed: only the edges are encoded. MP4 only.',
  };

  async function loadVocabulary() {
    for (let wait = 500; ; wait = Math.min(wait * 2, SLOW_POLL_MS)) {
      try {
        const response = await fetch('/v1/vocabulary', { headers: { Accept: 'application/json' } });
        if (response.ok) {
          const v = await response.json();
          for (const state of v.states) {
            EVENT_NAMES.push(state.name);
            STATE_WORDS[state.name] = state.words;
            if (state.terminal) TERMINAL.add(state.name);
          }
          for (const e of v.errors) ERROR_WORDS[e.code] = e.words;
          PROFILES.push(...v.profiles);
          ACCURACIES.push(...v.accuracies);
          fillOutputOptions();
          clearBanner('network');
          return;
        }
      } catch {
        // Not reachable yet: said in the banner, tried again.
      }
      setBanner('network', 'The server cannot be reached; trying again…');
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  // Which form field an error of the submission belongs to.
  const FIELD_OF_CODE = {
    missing_source: 'source',
    invalid_url: 'source',
    invalid_video_id: 'source',
    source_forbidden: 'source',
    invalid_clip_range: 'stop',
    clip_too_long: 'stop',
  };

  // ---- the API key ------------------------------------------------------------------------

  function loadKey() {
    try {
      return localStorage.getItem(KEY_STORAGE) || '';
    } catch {
      return '';
    }
  }

  function storeKey(key) {
    try {
      if (key) localStorage.setItem(KEY_STORAGE, key);
      else localStorage.removeItem(KEY_STORAGE);
      return true;
    } catch {
      return false;
    }
  }

  let apiKey = loadKey();

  function withKey(path) {
    if (!apiKey) return path;
    return `${path}${path.includes('?') ? '&' : '?'}key=${encodeURIComponent(apiKey)}`;
  }

  function updateKeyState() {
    $('key-state').textContent = apiKey ? '(set)' : '(none set)';
    $('key-forget').hidden = !apiKey;
  }

  // ---- calling the API --------------------------------------------------------------------

  function errorOf(response, data) {
    if (data && typeof data.error === 'object' && data.error !== null) {
      return {
        code: String(data.error.code ?? `http_${response.status}`),
        message: String(data.error.message ?? ''),
      };
    }
    return { code: `http_${response.status}`, message: response.statusText || '' };
  }

  /** One API call: `{status, data, error}`; status 0 when the server could not be reached. */
  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const keyUsed = apiKey;
    if (keyUsed) headers.Authorization = `Bearer ${keyUsed}`;
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
        credentials: 'same-origin',
      });
    } catch {
      return { status: 0, data: null, error: { code: 'network', message: '' } };
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    const error = response.ok ? null : errorOf(response, data);
    if (response.status === 401) {
      // Unless the key changed while the request was out.
      if (keyUsed === apiKey) keyNeeded(error);
    } else {
      authBlocked = false;
      clearBanner('auth');
    }
    return { status: response.status, data, error };
  }

  // ---- messages ---------------------------------------------------------------------------

  let bannerKind = null;
  /** The last answer was 401: poll slowly until a key is saved. */
  let authBlocked = false;

  function setBanner(kind, text) {
    bannerKind = kind;
    const banner = $('banner');
    banner.textContent = text;
    banner.hidden = false;
  }

  function clearBanner(kind) {
    if (bannerKind !== kind) return;
    bannerKind = null;
    $('banner').hidden = true;
    $('banner').textContent = '';
  }

  function keyNeeded(error) {
    authBlocked = true;
    const why = apiKey
      ? `The server refused the API key${error && error.message ? ` (${error.message})` : ''}.`
      : 'This server needs an API key.';
    setBanner('auth', `${why} Enter your key under “API key” and save it.`);
    $('key-box').open = true;
    if (!jobs.size) $('jobs-empty').textContent = 'Enter an API key to see the jobs.';
  }

  let toastTimer = null;
  function toast(text) {
    const el = $('toast');
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => {
      el.hidden = true;
    }, 4000);
  }

  function announce(text) {
    $('announcer').textContent = text;
  }

  /** `<strong>words</strong> <code>code</code> message`, as nodes (never HTML). */
  function errorContent(error) {
    const fragment = document.createDocumentFragment();
    const words = document.createElement('strong');
    words.textContent = ERROR_WORDS[error.code] || 'Error.';
    const code = document.createElement('code');
    code.textContent = error.code;
    fragment.append(words, ' ', code);
    if (error.message) fragment.append(` ${error.message}`);
    return fragment;
  }

  function errorText(error) {
    const words = ERROR_WORDS[error.code] || 'Error.';
    return `${words} (${error.code})${error.message ? ` ${error.message}` : ''}`;
  }

  // ---- formatting -------------------------------------------------------------------------

  const pad = (n) => String(n).padStart(2, '0');

  /** Seconds as `HH:MM:SS[.fff]`, the form the API takes. */
  function formatTime(seconds) {
    const total = Math.max(0, Math.round(seconds * 1000));
    const ms = total % 1000;
    const s = Math.floor(total / 1000) % 60;
    const m = Math.floor(total / 60000) % 60;
    const h = Math.floor(total / 3600000);
    const base = `${pad(h)}:${pad(m)}:${pad(s)}`;
    return ms ? `${base}.${String(ms).padStart(3, '0').replace(/0+$/, '')}` : base;
  }

  function formatBytes(n) {
    if (typeof n !== 'number' || !Number.isFinite(n)) return '';
    const units = ['B', 'kB', 'MB', 'GB', 'TB'];
    let i = 0;
    let v = n;
    while (v >= 1000 && i < units.length - 1) {
      v /= 1000;
      i += 1;
    }
    return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
  }

  function formatCreated(ms) {
    const date = new Date(ms);
    const today = new Date();
    if (date.toDateString() === today.toDateString()) {
      return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    }
    return date.toLocaleString([], {
      year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
    });
  }

  function sourceName(spec) {
    if (spec.video_id) return spec.video_id;
    try {
      const url = new URL(spec.url);
      const parts = url.pathname.split('/').filter(Boolean);
      const last = parts.length ? decodeURIComponent(parts[parts.length - 1]) : '';
      return last || url.host;
    } catch {
      return spec.url || '?';
    }
  }

  function rangeText(spec) {
    return `${spec.start || '00:00:00'} → ${spec.stop || 'end'}`;
  }

  const percentOf = (x) => (typeof x === 'number' && Number.isFinite(x)
    ? Math.max(0, Math.min(100, x)) : null);

  /** The row's bar (the current step's percent; null: not known yet) and its words. */
  function progressOf(job) {
    const p = job.progress || {};
    const d = p.download || {};
    const t = p.transcode || {};
    const u = p.upload || {};
    const again = job.attempt > 1 ? ` · try ${job.attempt}` : '';
    switch (job.state) {
      case 'queued':
        return { value: 0, text: `Waiting for a worker${again}` };
      case 'downloading': {
        if (d.cached) return { value: 100, text: 'Step 1 of 3, download: the source is already here' };
        const v = percentOf(d.percent);
        const amount = d.total_bytes
          ? `${formatBytes(d.bytes || 0)} of ${formatBytes(d.total_bytes)}`
          : formatBytes(d.bytes || 0);
        return {
          value: v,
          text: `Step 1 of 3, download: ${v === null ? '' : `${Math.floor(v)}% · `}${amount}${again}`,
        };
      }
      case 'transcoding': {
        const v = percentOf(t.percent) ?? 0;
        const speed = typeof t.speed === 'number' ? ` · ${t.speed.toFixed(1)}× speed` : '';
        return { value: v, text: `Step 2 of 3, cutting: ${Math.floor(v)}%${speed}${again}` };
      }
      case 'uploading': {
        const v = percentOf(u.percent) ?? 0;
        return { value: v, text: `Step 3 of 3, saving: ${Math.floor(v)}%${again}` };
      }
      default:
        return null;
    }
  }

  // ---- the jobs ---------------------------------------------------------------------------

  /** id → latest job document. */
  const jobs = new Map();
  /** id → row. */
  const rows = new Map();
  /** Jobs submitted from this page: kept on show even when older than the listing's page. */
  const pinned = new Set();
  let listed = new Set();

  function applyJob(job) {
    if (!job || typeof job.id !== 'string') return;
    jobs.set(job.id, job);
    render();
  }

  function shownJobs() {
    return [...jobs.values()]
      .filter((j) => listed.has(j.id) || pinned.has(j.id))
      .sort((a, b) => (b.created_at_ms - a.created_at_ms) || (a.id < b.id ? -1 : 1));
  }

  function render() {
    const list = $('jobs');
    const shown = shownJobs();
    const ids = new Set(shown.map((j) => j.id));
    for (const [id, row] of rows) {
      if (!ids.has(id)) {
        row.el.remove();
        rows.delete(id);
        jobs.delete(id);
      }
    }
    shown.forEach((job, i) => {
      let row = rows.get(job.id);
      if (!row) {
        row = makeRow(job.id);
        rows.set(job.id, row);
      }
      updateRow(row, job);
      watchEvents(job);
      // Move only what is out of place, so focus and playing videos stay put.
      const at = list.children[i];
      if (at !== row.el) list.insertBefore(row.el, at || null);
    });
    const empty = $('jobs-empty');
    empty.hidden = shown.length > 0;
    if (!shown.length && bannerKind !== 'auth') empty.textContent = 'No jobs yet.';
  }

  function makeRow(id) {
    const el = $('job-template').content.firstElementChild.cloneNode(true);
    const q = (selector) => el.querySelector(selector);
    const safeId = id.replace(/[^A-Za-z0-9_-]/g, '');
    el.id = `job-${safeId}`;
    el.dataset.id = id;
    const row = {
      id,
      el,
      job: null,
      state: null,
      badge: q('.badge'),
      title: q('.job-title'),
      url: q('.job-url'),
      range: q('.job-range'),
      time: q('.job-time'),
      progressBox: q('.job-progress'),
      progress: q('progress'),
      progressText: q('.progress-text'),
      error: q('.job-error'),
      result: q('.job-result'),
      actions: q('.job-actions'),
      play: q('.play'),
      download: q('.download'),
      copy: q('.copy'),
      cancelBox: q('.job-cancel'),
      cancel: q('.cancel'),
      player: q('.job-player'),
      idText: q('.job-id'),
      thumb: q('.job-thumb'),
    };
    row.progressText.id = `progress-${safeId}`;
    row.progress.setAttribute('aria-describedby', row.progressText.id);
    row.player.id = `player-${safeId}`;
    row.play.setAttribute('aria-controls', row.player.id);
    row.play.setAttribute('aria-expanded', 'false');
    row.play.addEventListener('click', () => togglePlayer(row));
    row.copy.addEventListener('click', () => copyLink(row));
    row.cancel.addEventListener('click', () => cancelJob(row));
    row.idText.textContent = `Job ${id}`;
    return row;
  }

  function updateRow(row, job) {
    const previous = row.state;
    row.job = job;
    row.state = job.state;
    const spec = job.spec || {};
    const name = sourceName(spec);
    row.el.dataset.state = job.state;
    row.el.className = `job state-${job.state}`;
    row.badge.textContent = STATE_WORDS[job.state] || job.state;
    row.title.textContent = name;
    row.url.textContent = spec.video_id ? `catalogue id · ${spec.url}` : spec.url || '';
    row.range.textContent = rangeText(spec);
    if (typeof job.created_at_ms === 'number') {
      row.time.dateTime = new Date(job.created_at_ms).toISOString();
      row.time.textContent = formatCreated(job.created_at_ms);
    }
    row.progress.setAttribute('aria-label', `Progress of ${name}`);

    const progress = progressOf(job);
    row.progressBox.hidden = progress === null;
    if (progress) {
      if (progress.value === null) row.progress.removeAttribute('value');
      else row.progress.value = progress.value;
      row.progressText.textContent = progress.text;
    }

    row.error.hidden = !job.error;
    if (job.error) {
      const error = { code: String(job.error.code), message: String(job.error.message || '') };
      if (row.error.dataset.code !== error.code || row.error.dataset.message !== error.message) {
        row.error.replaceChildren(errorContent(error));
        row.error.dataset.code = error.code;
        row.error.dataset.message = error.message;
      }
    }

    const done = job.state === 'completed';
    const r = job.result;
    row.result.hidden = !(done && r);
    if (done && r) {
      const parts = [];
      if (typeof r.duration_secs === 'number') parts.push(`${r.duration_secs.toFixed(2)} s`);
      if (r.width && r.height) parts.push(`${r.width}×${r.height}`);
      if (r.video_codec) parts.push(r.audio_codec ? `${r.video_codec}/${r.audio_codec}` : r.video_codec);
      if (typeof r.size === 'number') parts.push(formatBytes(r.size));
      row.result.textContent = parts.join(' · ');
    }
    // A finished job with a picture shows its poster.
    const poster = done && r && r.poster_key && job.links && job.links.poster;
    row.thumb.hidden = !poster;
    if (poster) {
      const src = withKey(job.links.poster);
      if (row.thumb.getAttribute('src') !== src) row.thumb.src = src;
    }
    row.actions.hidden = !done;
    row.cancelBox.hidden = TERMINAL.has(job.state);
    row.cancel.setAttribute('aria-label', `Cancel ${name} ${rangeText(spec)}`);
    if (done) {
      const href = videoUrl(job);
      if (row.download.getAttribute('href') !== href) row.download.setAttribute('href', href);
      row.download.setAttribute('aria-label', `Download ${name} ${rangeText(spec)}`);
    } else if (!row.player.hidden) {
      closePlayer(row);
    }

    if (previous && previous !== job.state && TERMINAL.has(job.state)) {
      announce(`${name} ${rangeText(spec)}: ${STATE_WORDS[job.state] || job.state}.${
        job.error ? ` ${errorText(job.error)}` : ''}`);
    }
  }

  function videoUrl(job) {
    const base = (job.links && job.links.video) || `/v1/jobs/${encodeURIComponent(job.id)}/video`;
    return withKey(base);
  }

  function closePlayer(row) {
    const media = row.player.querySelector('video, audio');
    if (media) media.pause();
    row.player.hidden = true;
    row.play.textContent = 'Play';
    row.play.setAttribute('aria-expanded', 'false');
  }

  function togglePlayer(row) {
    if (!row.player.hidden) {
      closePlayer(row);
      return;
    }
    // An animation is a picture; a sound-only result gets an audio player.
    const mime = (row.job.result && row.job.result.mime) || 'video/mp4';
    const kind = mime.startsWith('image/') ? 'img' : mime.startsWith('audio/') ? 'audio' : 'video';
    if (kind === 'img') {
      let img = row.player.querySelector('img');
      if (!img) {
        img = document.createElement('img');
        img.alt = `Animation of ${sourceName(row.job.spec || {})}`;
        row.player.append(img);
      }
      const src = videoUrl(row.job);
      if (img.getAttribute('src') !== src) img.src = src;
      row.player.hidden = false;
      row.play.textContent = 'Close';
      row.play.setAttribute('aria-expanded', 'true');
      return;
    }
    let video = row.player.querySelector(kind);
    if (!video) {
      video = document.createElement(kind);
      video.controls = true;
      video.playsInline = true;
      video.preload = 'auto';
      video.setAttribute('aria-label', `Clip ${sourceName(row.job.spec || {})}`);
      const note = document.createElement('p');
      note.className = 'field-error';
      note.hidden = true;
      video.addEventListener('error', () => {
        note.textContent = 'The clip could not be played here; try Download.';
        note.hidden = false;
      });
      video.addEventListener('playing', () => {
        note.hidden = true;
      });
      row.player.append(video, note);
    }
    const src = videoUrl(row.job);
    if (video.getAttribute('src') !== src) video.src = src;
    row.player.hidden = false;
    row.play.textContent = 'Close player';
    row.play.setAttribute('aria-expanded', 'true');
    const playing = video.play();
    // Refused autoplay or a load error: the controls and the error note remain.
    if (playing) playing.catch(() => {});
  }

  /** `DELETE /v1/jobs/{id}`: the job stops (ffmpeg is killed) and leaves nothing behind. */
  async function cancelJob(row) {
    row.cancel.disabled = true;
    const r = await api('DELETE', `/v1/jobs/${encodeURIComponent(row.id)}`);
    row.cancel.disabled = false;
    if (r.status === 200 && r.data) {
      updateRow(row, r.data);
    } else if (r.error) {
      announce(`Could not cancel: ${errorText(r.error)}`);
    }
  }

  async function copyLink(row) {
    const link = new URL((row.job.links && row.job.links.video) || `/v1/jobs/${row.id}/video`,
      window.location.href).href;
    let copied = false;
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(link);
        copied = true;
      } catch {
        copied = false;
      }
    }
    if (!copied) copied = legacyCopy(link);
    if (copied) {
      // The key is left out of a link meant to be passed on.
      toast(apiKey ? 'Link copied. Opening it needs an API key (add ?key=…).' : 'Link copied.');
    } else {
      window.prompt('Copy this link:', link);
    }
  }

  function legacyCopy(text) {
    const focused = document.activeElement;
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.className = 'offscreen';
    document.body.append(area);
    area.select();
    let copied = false;
    try {
      copied = document.execCommand('copy');
    } catch {
      copied = false;
    }
    area.remove();
    if (focused && typeof focused.focus === 'function') focused.focus();
    return copied;
  }

  // ---- live updates -----------------------------------------------------------------------

  let pollTimer = null;
  let polling = false;
  let pollAgain = false;

  async function poll() {
    clearTimeout(pollTimer);
    pollTimer = null;
    if (polling) {
      pollAgain = true; // right after the one under way
      return;
    }
    polling = true;
    try {
      const r = await api('GET', `/v1/jobs?limit=${LIST_LIMIT}`);
      if (r.status === 200 && r.data && Array.isArray(r.data.jobs)) {
        clearBanner('network');
        listed = new Set(r.data.jobs.map((j) => j.id));
        for (const job of r.data.jobs) jobs.set(job.id, job);
        await refreshPinned();
        render();
      } else if (r.status === 0) {
        setBanner('network', 'The server cannot be reached; trying again…');
      } else if (r.status !== 401) {
        setBanner('network', `The jobs could not be loaded: ${errorText(r.error)}`);
      }
    } finally {
      polling = false;
      if (pollAgain) {
        pollAgain = false;
        poll();
      } else {
        schedule();
      }
    }
  }

  /** Jobs submitted here but not on the listing's page: asked for one by one until done. */
  async function refreshPinned() {
    for (const id of pinned) {
      if (listed.has(id)) continue;
      const known = jobs.get(id);
      if (known && TERMINAL.has(known.state)) continue;
      const r = await api('GET', `/v1/jobs/${encodeURIComponent(id)}`);
      if (r.status === 200 && r.data) jobs.set(id, r.data);
      else if (r.status === 404) pinned.delete(id);
    }
  }

  function schedule() {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, document.hidden || authBlocked ? SLOW_POLL_MS : POLL_MS);
  }

  const streams = new Map();

  function watchEvents(job) {
    if (typeof EventSource !== 'function') return;
    if (TERMINAL.has(job.state) || streams.has(job.id)) return;
    const source = new EventSource(withKey(`/v1/jobs/${encodeURIComponent(job.id)}/events`));
    streams.set(job.id, source);
    const stop = () => {
      source.close();
      streams.delete(job.id);
    };
    const onEvent = (event) => {
      let next = null;
      try {
        next = JSON.parse(event.data);
      } catch {
        return;
      }
      applyJob(next);
      if (next && TERMINAL.has(next.state)) stop();
    };
    EVENT_NAMES.forEach((name) => source.addEventListener(name, onEvent));
    source.onerror = stop; // the poller carries on
  }

  // ---- the form ---------------------------------------------------------------------------

  const FIELDS = ['source', 'start', 'stop', 'max-height', 'poster-at'];

  // ---- output options ---------------------------------------------------------------------

  function profileInfo(name) {
    return PROFILES.find((p) => p.name === name) || { name, has_video: true, has_audio: true };
  }

  function fillOutputOptions() {
    const option = (value, text) => {
      const el = document.createElement('option');
      el.value = value;
      el.textContent = text;
      return el;
    };
    $('profile').replaceChildren(...PROFILES.map((p) => option(p.name, p.words)));
    $('accuracy').replaceChildren(...ACCURACIES.map((a) => option(a, a[0].toUpperCase() + a.slice(1))));
    outputChanged();
  }

  /** Shows the options the chosen profile takes, and says what the choice costs. */
  function outputChanged() {
    const profile = profileInfo($('profile').value || 'mp4');
    $('profile-hint').textContent = profile.animation
      ? 'An animation: no sound, at most 30 s.'
      : profile.has_video ? '' : 'Sound only: no picture and no poster.';
    $('fps-field').hidden = !profile.animation;
    $('normalize-field').hidden = !profile.has_audio;
    explainAccuracy();
    const words = [profile.name.toUpperCase()];
    if ($('max-height').value) words.push(`≤ ${$('max-height').value} px`);
    if ($('accuracy').value && $('accuracy').value !== 'frame') words.push($('accuracy').value);
    if ($('normalize').checked && profile.has_audio) words.push('loudness');
    $('output-summary').textContent = `(${words.join(', ')})`;
  }

  /** The output fields of the submission, only those that differ from the defaults. */
  function outputOptions(body) {
    const profile = profileInfo($('profile').value || 'mp4');
    if (profile.name !== 'mp4') body.profile = profile.name;
    const height = $('max-height').value.trim();
    if (height) body.max_height = Number(height);
    const accuracy = $('accuracy').value;
    if (accuracy && accuracy !== 'frame') body.accuracy = accuracy;
    const poster = $('poster-at').value.trim();
    if (poster) body.poster_at = poster;
    const fps = $('fps').value.trim();
    if (profile.animation && fps) body.fps = Number(fps);
    if (profile.has_audio && $('normalize').checked) body.audio = { normalize: true };
  }
  let submitting = false;

  function clearFieldError(field) {
    const el = $(`${field}-error`);
    el.hidden = true;
    el.replaceChildren();
    $(field).removeAttribute('aria-invalid');
  }

  function clearFormErrors() {
    FIELDS.forEach(clearFieldError);
    $('form-error').hidden = true;
    $('form-error').replaceChildren();
  }

  function showFieldError(field, error) {
    const el = $(`${field}-error`);
    el.replaceChildren(errorContent(error));
    el.hidden = false;
    $(field).setAttribute('aria-invalid', 'true');
  }

  function showFormError(error) {
    $('form-error').replaceChildren(errorContent(error));
    $('form-error').hidden = false;
  }

  function fieldFor(error) {
    if (error.code === 'invalid_timecode') {
      if (error.message.startsWith('`stop`')) return 'stop';
      if (error.message.startsWith('`start`')) return 'start';
      if (error.message.startsWith('`poster_at`')) return 'poster-at';
      return null;
    }
    if (error.message.startsWith('`max_height`')) return 'max-height';
    if (error.message.startsWith('`poster_at`')) return 'poster-at';
    return FIELD_OF_CODE[error.code] || null;
  }

  function highlight(row) {
    row.el.classList.remove('flash');
    // Restart the animation.
    void row.el.offsetWidth;
    row.el.classList.add('flash');
    const still = window.matchMedia('(prefers-reduced-motion: reduce)').matches;
    row.el.scrollIntoView({ block: 'nearest', behavior: still ? 'auto' : 'smooth' });
  }

  async function submitClip(event) {
    event.preventDefault();
    if (submitting) return;
    clearFormErrors();
    const source = $('source').value.trim();
    const start = $('start').value.trim();
    const stop = $('stop').value.trim();
    if (!source) {
      showFieldError('source', { code: 'missing_source', message: '' });
      $('source').focus();
      return;
    }
    const body = VIDEO_ID.test(source) ? { video_id: source } : { url: source };
    if (start) body.start = start;
    if (stop) body.stop = stop;
    outputOptions(body);

    submitting = true;
    const button = $('submit');
    button.setAttribute('aria-busy', 'true');
    button.classList.add('busy');
    $('form-status').textContent = 'Sending…';
    try {
      const r = await api('POST', '/v1/jobs', body);
      if ((r.status === 200 || r.status === 202) && r.data && r.data.id) {
        pinned.add(r.data.id);
        applyJob(r.data);
        const row = rows.get(r.data.id);
        let said;
        if (r.status === 202) said = 'Clip requested: it is at the top of the jobs.';
        else if (r.data.state === 'completed') said = 'This clip was made before: here it is in the jobs.';
        else said = 'This clip was already requested: it is in the jobs.';
        $('form-status').textContent = said;
        if (row) highlight(row);
      } else if (r.status === 401) {
        $('form-status').textContent = '';
        showFormError(r.error);
        $('key').focus();
      } else if (r.status === 0) {
        $('form-status').textContent = '';
        showFormError({ code: 'network', message: 'Check the connection and try again.' });
      } else {
        $('form-status').textContent = '';
        const field = fieldFor(r.error);
        if (field) {
          showFieldError(field, r.error);
          if (r.error.code === 'invalid_clip_range') $('start').setAttribute('aria-invalid', 'true');
          $(field).focus();
        } else {
          showFormError(r.error);
        }
      }
    } finally {
      submitting = false;
      button.removeAttribute('aria-busy');
      button.classList.remove('busy');
    }
  }

  // ---- the preview ------------------------------------------------------------------------

  let previewUrl = null;

  function httpUrl(text) {
    try {
      const url = new URL(text);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
    } catch {
      return null;
    }
  }

  function showPreviewButtons(on) {
    $('start-now').hidden = !on;
    $('stop-now').hidden = !on;
  }

  function updatePreview() {
    const text = $('source').value.trim();
    const url = httpUrl(text);
    if (url === previewUrl) return;
    previewUrl = url;
    const video = $('preview');
    const note = $('preview-note');
    showPreviewButtons(false);
    $('preview-box').hidden = true;
    if (!url) {
      video.pause();
      video.removeAttribute('src');
      video.load();
      note.textContent = text && VIDEO_ID.test(text)
        ? 'There is no preview for a catalogue id; type the times.' : '';
      note.hidden = !note.textContent;
      return;
    }
    note.textContent = 'Loading a preview…';
    note.hidden = false;
    video.src = url;
  }

  function previewReady() {
    if (!previewUrl) return;
    $('preview-box').hidden = false;
    $('preview-note').hidden = true;
    showPreviewButtons(true);
  }

  function previewFailed() {
    if (!previewUrl) return;
    $('preview-box').hidden = true;
    showPreviewButtons(false);
    const note = $('preview-note');
    note.textContent = 'This source does not play in the browser, so there is no preview; type the times.';
    note.hidden = false;
  }

  function useTime(field) {
    const video = $('preview');
    if (!previewUrl || !(video.readyState >= 1)) return;
    $(field).value = formatTime(video.currentTime);
    clearFieldError(field);
    announce(`${field === 'start' ? 'Start' : 'Stop'} set to ${$(field).value}.`);
  }

  // ---- the editor: the source inspected, a filmstrip, in and out handles ------------------

  // The source's inspection (`POST /v1/sources`) gives its length, frame rate, keyframes and a
  // storyboard sprite; the timeline shows the sprite's tiles, marks the keyframes, and two
  // handles (pointer or keyboard) set start and stop.
  const editor = {
    source: null,
    token: 0,
    duration: 0,
    fps: 25,
    keyframes: [],
    start: 0,
    stop: 0,
    dragging: null,
    playUntil: null,
  };

  /** `HH:MM:SS[.f]` as seconds, or null. */
  function parseTime(text) {
    const m = /^(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)$/.exec(text.trim());
    if (!m) return null;
    return Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]);
  }

  async function inspectSource() {
    const text = $('source').value.trim();
    if (text === editor.source) return;
    editor.source = text;
    const token = ++editor.token;
    $('editor').hidden = true;
    const note = $('editor-note');
    if (!text || !(VIDEO_ID.test(text) || httpUrl(text))) {
      note.hidden = true;
      return;
    }
    note.textContent = 'Looking at the source for a timeline…';
    note.hidden = false;
    let r = await api('POST', '/v1/sources', VIDEO_ID.test(text) ? { video_id: text } : { url: text });
    const started = Date.now();
    while (token === editor.token) {
      if (!(r.status === 200 || r.status === 202) || !r.data) {
        note.textContent = r.error ? `No timeline: ${errorText(r.error)}` : 'No timeline.';
        return;
      }
      if (r.data.state === 'ready') {
        showEditor(r.data);
        return;
      }
      if (r.data.state === 'failed') {
        note.textContent = `No timeline: ${errorText(r.data.error || { code: 'failed' })}`;
        return;
      }
      if (Date.now() - started > 120000) {
        note.textContent = 'The source is slow to inspect; type the times.';
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
      if (token !== editor.token) return;
      r = await api('GET', r.data.links.self);
    }
  }

  function showEditor(view) {
    const found = view.inspection || {};
    editor.duration = found.duration_secs || 0;
    const video = (found.streams || []).find((s) => s.kind === 'video');
    editor.fps = (video && video.fps) || 25;
    editor.keyframes = found.keyframes || [];
    if (!(editor.duration > 0)) return;
    const strip = $('filmstrip');
    const board = found.storyboard;
    strip.replaceChildren();
    strip.dataset.loaded = '';
    strip.dataset.tiles = board ? String(board.tiles) : '0';
    $('editor').hidden = false;
    $('editor-note').hidden = true;
    if (board) {
      const src = withKey(view.links.storyboard_jpg);
      // As many tiles as fit at their own shape, picked evenly from the sprite.
      const aspect = board.tile_width / board.tile_height;
      const fit = Math.round(strip.clientWidth / (strip.clientHeight * aspect));
      const shown = Math.max(1, Math.min(board.tiles, fit || board.tiles));
      const tiles = [];
      for (let k = 0; k < shown; k++) {
        const i = Math.floor((k * board.tiles) / shown);
        const col = i % board.columns;
        const row = Math.floor(i / board.columns);
        const tile = document.createElement('div');
        tile.className = 'tile';
        tile.style.backgroundImage = `url("${src}")`;
        tile.style.backgroundSize = `${board.columns * 100}% ${board.rows * 100}%`;
        const x = board.columns > 1 ? (col / (board.columns - 1)) * 100 : 0;
        const y = board.rows > 1 ? (row / (board.rows - 1)) * 100 : 0;
        tile.style.backgroundPosition = `${x}% ${y}%`;
        tiles.push(tile);
      }
      strip.append(...tiles);
      const sprite = new Image();
      sprite.addEventListener('load', () => {
        strip.dataset.loaded = String(sprite.naturalWidth);
      });
      sprite.src = src;
    }
    const marks = $('keyframe-marks');
    marks.replaceChildren();
    const every = Math.max(1, Math.ceil(editor.keyframes.length / 400));
    editor.keyframes.forEach((k, i) => {
      if (i % every) return;
      const mark = document.createElement('div');
      mark.className = 'mark';
      mark.style.left = `${(k / editor.duration) * 100}%`;
      marks.append(mark);
    });
    for (const id of ['handle-in', 'handle-out']) {
      $(id).setAttribute('aria-valuemin', '0');
      $(id).setAttribute('aria-valuemax', editor.duration.toFixed(3));
    }
    const start = parseTime($('start').value);
    const stop = parseTime($('stop').value);
    editor.start = start !== null && start < editor.duration ? start : 0;
    editor.stop = stop !== null && stop <= editor.duration && stop > editor.start ? stop : editor.duration;
    drawSelection();
  }

  const frame = () => 1 / editor.fps;
  const snap = (t) => Math.round(t * editor.fps) / editor.fps;

  /** Moves the in (`start`) or out (`stop`) edge to `t`, keeping a frame between them. */
  function setEdge(which, t, announceIt) {
    if (!(editor.duration > 0)) return;
    if (which === 'start') {
      editor.start = Math.min(Math.max(0, t), editor.stop - frame());
    } else {
      editor.stop = Math.max(Math.min(editor.duration, t), editor.start + frame());
    }
    const value = which === 'start' ? editor.start : editor.stop;
    $(which).value = formatTime(value);
    clearFieldError(which);
    drawSelection();
    if (announceIt) announce(`${which === 'start' ? 'Start' : 'Stop'} ${$(which).value}.`);
  }

  function drawSelection() {
    const at = (t) => `${(t / editor.duration) * 100}%`;
    $('handle-in').style.left = at(editor.start);
    $('handle-out').style.left = at(editor.stop);
    $('selection').style.left = at(editor.start);
    $('selection').style.width = `${((editor.stop - editor.start) / editor.duration) * 100}%`;
    for (const [id, t] of [['handle-in', editor.start], ['handle-out', editor.stop]]) {
      $(id).setAttribute('aria-valuenow', t.toFixed(3));
      $(id).setAttribute('aria-valuetext', formatTime(t));
    }
    explainAccuracy();
  }

  /** The accuracy's cost for this selection: where a copy would really start. */
  function explainAccuracy() {
    const accuracy = $('accuracy').value || 'frame';
    let words = ACCURACY_WORDS[accuracy] || '';
    if (!$('editor').hidden && editor.keyframes.length) {
      const before = editor.keyframes.filter((k) => k <= editor.start + 1e-6).pop() ?? 0;
      const start = formatTime(editor.start);
      if (accuracy === 'keyframe') {
        words += before < editor.start - 1e-6
          ? ` This clip would start at ${formatTime(before)}, ${(editor.start - before).toFixed(2)} s before ${start}.`
          : ` This clip starts on a keyframe: exactly ${start}.`;
      } else {
        words += ` This clip starts exactly at ${start}.`;
      }
    }
    $('accuracy-hint').textContent = words;
  }

  function dragFrom(event) {
    if (!editor.dragging) return;
    const rect = $('timeline').getBoundingClientRect();
    const t = snap(((event.clientX - rect.left) / rect.width) * editor.duration);
    setEdge(editor.dragging, t, false);
  }

  function startDrag(which, event) {
    event.preventDefault();
    editor.dragging = which;
    event.currentTarget.setPointerCapture(event.pointerId);
    event.currentTarget.focus();
  }

  function endDrag() {
    if (!editor.dragging) return;
    const which = editor.dragging;
    editor.dragging = null;
    announce(`${which === 'start' ? 'Start' : 'Stop'} ${$(which).value}.`);
  }

  /** Arrow keys move the focused handle a frame (Shift: a second); I and O set the edges at
   * the preview's time; Space plays the selection. */
  function editorKey(event) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const handle = event.target.closest('.handle');
    const which = handle && (handle.id === 'handle-in' ? 'start' : 'stop');
    const key = event.key;
    if (which && (key === 'ArrowLeft' || key === 'ArrowRight')) {
      const step = (event.shiftKey ? 1 : frame()) * (key === 'ArrowLeft' ? -1 : 1);
      setEdge(which, snap((which === 'start' ? editor.start : editor.stop) + step), true);
    } else if (which && (key === 'Home' || key === 'End')) {
      setEdge(which, key === 'Home' ? 0 : editor.duration, true);
    } else if (key === 'i' || key === 'I' || key === 'o' || key === 'O') {
      const video = $('preview');
      if (!previewUrl || !(video.readyState >= 1)) {
        announce('There is no preview to take a time from.');
        return;
      }
      setEdge(key.toLowerCase() === 'i' ? 'start' : 'stop', snap(video.currentTime), true);
    } else if (key === ' ') {
      playSelection();
    } else {
      return;
    }
    event.preventDefault();
  }

  function playSelection() {
    const video = $('preview');
    if (!previewUrl || !(video.readyState >= 1)) return;
    editor.playUntil = editor.stop;
    video.currentTime = editor.start;
    const playing = video.play();
    if (playing) playing.catch(() => {});
  }

  function previewTick() {
    const video = $('preview');
    if (editor.playUntil !== null && video.currentTime >= editor.playUntil) {
      video.pause();
      editor.playUntil = null;
    }
  }

  /** Typing a time moves its handle. */
  function fieldToHandle(which) {
    const t = parseTime($(which).value);
    if (t === null || $('editor').hidden) return;
    if (which === 'start' && t < editor.stop) editor.start = t;
    if (which === 'stop' && t > editor.start && t <= editor.duration) editor.stop = t;
    drawSelection();
  }

  // ---- the key form -----------------------------------------------------------------------

  function saveKey(event) {
    event.preventDefault();
    const input = $('key');
    const key = input.value.trim();
    if (!key || !KEY_CHARS.test(key)) {
      toast('A key is one word of printable characters, without spaces.');
      input.focus();
      return;
    }
    apiKey = key;
    authBlocked = false;
    const kept = storeKey(key);
    input.value = '';
    updateKeyState();
    clearBanner('auth');
    toast(kept ? 'Key saved in this browser.' : 'Key in use until this page is closed (this browser does not keep it).');
    render();
    poll();
  }

  function forgetKey() {
    apiKey = '';
    storeKey('');
    updateKeyState();
    toast('Key forgotten.');
    render();
    poll();
    $('key').focus();
  }

  // ---- start ------------------------------------------------------------------------------

  $('clip-form').addEventListener('submit', submitClip);
  for (const id of ['profile', 'accuracy', 'max-height', 'normalize']) {
    $(id).addEventListener('change', outputChanged);
  }
  for (const field of FIELDS) $(field).addEventListener('input', () => clearFieldError(field));
  $('source').addEventListener('change', updatePreview);
  $('source').addEventListener('change', inspectSource);
  for (const [id, which] of [['handle-in', 'start'], ['handle-out', 'stop']]) {
    $(id).addEventListener('pointerdown', (event) => startDrag(which, event));
    $(id).addEventListener('pointermove', dragFrom);
    $(id).addEventListener('pointerup', endDrag);
    $(id).addEventListener('pointercancel', endDrag);
  }
  $('editor').addEventListener('keydown', editorKey);
  $('preview').addEventListener('timeupdate', previewTick);
  $('start').addEventListener('input', () => fieldToHandle('start'));
  $('stop').addEventListener('input', () => fieldToHandle('stop'));
  $('preview').addEventListener('loadedmetadata', previewReady);
  $('preview').addEventListener('error', previewFailed);
  $('start-now').addEventListener('click', () => useTime('start'));
  $('stop-now').addEventListener('click', () => useTime('stop'));
  $('key-form').addEventListener('submit', saveKey);
  $('key-forget').addEventListener('click', forgetKey);
  window.addEventListener('storage', (event) => {
    if (event.key !== KEY_STORAGE) return;
    apiKey = event.newValue || '';
    authBlocked = false;
    updateKeyState();
    render();
    poll();
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) poll();
  });

  updateKeyState();
  loadVocabulary().then(poll);
})();
