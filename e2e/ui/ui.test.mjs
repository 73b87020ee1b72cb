// Drives Hopster's web page (/ui) in Debian's headless Chromium through playwright-core (no
// browser download). Run by e2e/tests/ui.rs against a real stack; on its own:
//
//   HOPSTER_UI_BASE_URL=http://127.0.0.1:5000 \
//   HOPSTER_UI_SOURCE_URL=http://127.0.0.1:8000/sixty.mp4 node ui.test.mjs
//
// The source must be a video of at least 4 s that the browser plays. With
// HOPSTER_UI_KEYED_BASE_URL (a gateway with API keys) and HOPSTER_UI_KEY (one of them) it also
// goes through the API key flow there. Writes clip.mp4 (the downloaded clip), keyed-clip.mp4,
// ui.png and ui-phone.png to HOPSTER_UI_ARTIFACTS, and prints one line
// `HOPSTER_UI_RESULT {json}` on success; exits non-zero on any failure, console errors included.

import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BASE = required('HOPSTER_UI_BASE_URL').replace(/\/$/, '');
const SOURCE = required('HOPSTER_UI_SOURCE_URL');
const OUT = path.resolve(process.env.HOPSTER_UI_ARTIFACTS || 'ui-artifacts');
const CHROMIUM = process.env.HOPSTER_UI_CHROMIUM || '/usr/bin/chromium';
const JOB_DEADLINE_MS = 120_000;
// Optional: a second gateway with API keys, and one of its keys.
const KEYED_BASE = (process.env.HOPSTER_UI_KEYED_BASE_URL || '').replace(/\/$/, '');
const KEY = process.env.HOPSTER_UI_KEY || '';
if (KEYED_BASE && !KEY) {
  console.error('HOPSTER_UI_KEYED_BASE_URL needs HOPSTER_UI_KEY');
  process.exit(2);
}

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return value;
}

const started = Date.now();
function log(text) {
  process.stderr.write(`[ui ${((Date.now() - started) / 1000).toFixed(1)}s] ${text}\n`);
}

// Console errors fail the test. The browser itself logs "Failed to load resource: ... status
// of N" for every 4xx answer; the steps that provoke one on purpose allow that status.
const consoleErrors = [];
const expectedNetworkErrors = [];
const allowedStatuses = new Set();
// Every Server-Sent Events stream the page opened (GET /v1/jobs/{id}/events).
const eventStreams = [];

function watchConsole(page) {
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    const status = /^Failed to load resource: the server responded with a status of (\d{3})/.exec(text);
    const where = msg.location() && msg.location().url ? ` (${msg.location().url})` : '';
    if (status && allowedStatuses.has(Number(status[1]))) expectedNetworkErrors.push(text + where);
    else consoleErrors.push(text + where);
  });
  page.on('pageerror', (error) => consoleErrors.push(`uncaught: ${error.message}`));
  page.on('request', (request) => {
    if (/\/v1\/jobs\/[0-9a-f]{32}\/events/.test(request.url())) eventStreams.push(request.url());
  });
}

async function waitFor(what, timeoutMs, check) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function focusInfo(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    const style = el ? getComputedStyle(el) : null;
    return {
      id: el ? el.id : '',
      tag: el ? el.tagName.toLowerCase() : '',
      focusVisible: el ? el.matches(':focus-visible') : false,
      outlineStyle: style ? style.outlineStyle : '',
      outlineWidth: style ? style.outlineWidth : '',
    };
  });
}

async function newestJobId(page, except) {
  return waitFor('a new job row', 10_000, () => page.evaluate((known) => {
    const row = document.querySelector('#jobs li.job');
    return row && !known.includes(row.dataset.id) ? row.dataset.id : null;
  }, except));
}

/** Waits for a job row to reach completed; records the states and bar values it showed. */
async function waitForCompleted(row, states = []) {
  const deadline = Date.now() + JOB_DEADLINE_MS;
  const values = new Set();
  for (;;) {
    const state = await row.getAttribute('data-state');
    if (states[states.length - 1] !== state) states.push(state);
    const value = await row.locator('progress').evaluate((p) => (p.hasAttribute('value') ? p.value : null));
    if (value !== null) values.add(Math.round(value));
    if (state === 'completed') return [...values].sort((a, b) => a - b);
    if (state === 'failed' || state === 'cancelled') {
      throw new Error(`the job ended ${state}: ${await row.locator('.job-error').textContent()}`);
    }
    if (Date.now() > deadline) throw new Error(`the job is still ${state} after ${JOB_DEADLINE_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function main() {
  fs.mkdirSync(OUT, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'hopster-ui-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--mute-audio',
    ],
    viewport: { width: 1280, height: 900 },
    acceptDownloads: true,
    permissions: ['clipboard-read', 'clipboard-write'],
  });
  const result = { states_seen: [] };
  try {
    const page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(15_000);
    watchConsole(page);

    // The page, with its policy.
    const response = await page.goto(`${BASE}/ui`);
    assert.equal(response.status(), 200);
    const csp = response.headers()['content-security-policy'] || '';
    assert.match(csp, /script-src 'self'/, `Content-Security-Policy: ${csp}`);
    assert.equal(await page.title(), 'Hopster — video clips');
    await waitFor('the first listing', 10_000,
      async () => (await page.textContent('#jobs-empty')) === 'No jobs yet.');
    log('page loaded');

    // Keyboard: Tab reaches the source field, then the submit button, with a visible focus ring.
    const reached = [];
    for (let i = 0; i < 25 && !reached.includes('submit'); i += 1) {
      await page.keyboard.press('Tab');
      const info = await focusInfo(page);
      reached.push(info.id || info.tag);
      if (info.id === 'submit') {
        assert.ok(info.focusVisible, 'the submit button matches :focus-visible');
        assert.notEqual(info.outlineStyle, 'none', 'the focused submit button has an outline');
        assert.notEqual(info.outlineWidth, '0px', 'the focused submit button has an outline');
      }
    }
    assert.ok(reached.includes('source'), `Tab order: ${reached.join(' → ')}`);
    assert.ok(reached.includes('submit'), `Tab order: ${reached.join(' → ')}`);
    assert.ok(reached.indexOf('source') < reached.indexOf('submit'), `Tab order: ${reached.join(' → ')}`);
    result.tab_order = reached;
    log(`tab order: ${reached.join(' → ')}`);

    // The source plays in the browser: the preview's time becomes the start.
    await page.fill('#source', SOURCE);
    await page.press('#source', 'Tab');
    await page.waitForSelector('#start-now', { state: 'visible' });
    // The test's source server answers without Range, so the preview cannot seek: play it
    // (fast, muted) past 2 s instead, as a person would, and pause.
    await page.evaluate(async () => {
      const video = document.getElementById('preview');
      video.playbackRate = 4;
      await video.play();
    });
    await waitFor('the preview to pass 2 s', 15_000,
      () => page.evaluate(() => document.getElementById('preview').currentTime >= 2));
    await page.evaluate(() => document.getElementById('preview').pause());
    await page.focus('#start-now');
    await page.keyboard.press('Enter');
    const fromPreview = await page.inputValue('#start');
    assert.match(fromPreview, /^00:00:0[2-9](\.\d{1,3})?$/, `start from the preview: ${fromPreview}`);
    result.start_from_preview = fromPreview;
    await page.fill('#start', '00:00:02');
    log(`preview time used as start: ${fromPreview}`);

    // Submit from the keyboard: Enter in the stop field.
    await page.fill('#stop', '00:00:04');
    await page.press('#stop', 'Enter');
    const id = await newestJobId(page, []);
    result.job_id = id;
    const row = page.locator(`#jobs li.job[data-id="${id}"]`);
    assert.match(await page.textContent('#form-status'), /Clip requested/);
    assert.equal((await row.locator('.job-range').textContent()).trim(), '00:00:02 → 00:00:04');
    log(`submitted job ${id}`);

    // The row goes through its stages to completed.
    const progressSeen = await waitForCompleted(row, result.states_seen);
    result.progress_values_seen = progressSeen;
    assert.match(await row.locator('.job-result').textContent(), /^2\.0\d s · 320×240/);
    log(`completed; states ${result.states_seen.join(' → ')}`);
    // The row was followed live, through the job's event stream.
    assert.ok(eventStreams.some((u) => u.includes(`/v1/jobs/${id}/events`)),
      `no event stream for ${id}: ${eventStreams.join(', ')}`);
    result.event_streams = eventStreams.length;

    // Play it in the page.
    await row.locator('button.play').click();
    const video = row.locator('.job-player video');
    assert.equal(await video.getAttribute('src'), `/v1/jobs/${id}/video`);
    await waitFor('the clip to play', 20_000,
      () => video.evaluate((v) => v.currentTime > 0 && !v.error));
    result.played_to = await video.evaluate((v) => v.currentTime);
    log(`played to ${result.played_to}s`);

    // Download it.
    const link = row.locator('a.download');
    assert.equal(await link.getAttribute('href'), `/v1/jobs/${id}/video`);
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    const clip = path.join(OUT, 'clip.mp4');
    await download.saveAs(clip);
    result.download = clip;
    result.download_name = download.suggestedFilename();
    log(`downloaded ${result.download_name} (${fs.statSync(clip).size} bytes)`);

    // Copy its link.
    await row.locator('button.copy').click();
    await waitFor('the toast', 5_000, async () => (await page.textContent('#toast')).startsWith('Link copied'));
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(copied, `${BASE}/v1/jobs/${id}/video`);
    log('link copied');

    // A running job can be cancelled from its row.
    const known = await page.evaluate(() => [...document.querySelectorAll('#jobs li.job')].map((li) => li.dataset.id));
    await page.fill('#start', '');
    await page.fill('#stop', '');
    await page.click('#submit');
    const longId = await newestJobId(page, known);
    const longRow = page.locator(`#jobs li.job[data-id="${longId}"]`);
    await waitFor('the long job to transcode', 60_000,
      async () => (await longRow.getAttribute('data-state')) === 'transcoding');
    await longRow.locator('button.cancel').click();
    await waitFor('the row to show cancelled', 10_000,
      async () => (await longRow.getAttribute('data-state')) === 'cancelled');
    assert.ok(await longRow.locator('button.cancel').isHidden(), 'no cancel button on a cancelled job');
    result.cancelled_job = longId;
    log(`cancelled ${longId}`);

    // A job that fails shows its error in words, with the code.
    await page.fill('#source', 'nosuchvideo');
    await page.fill('#start', '');
    await page.fill('#stop', '');
    await page.press('#source', 'Enter');
    const failedId = await newestJobId(page, [id, longId]);
    const failed = page.locator(`#jobs li.job[data-id="${failedId}"]`);
    await failed.locator('.job-error').waitFor({ state: 'visible', timeout: 60_000 });
    assert.equal(await failed.getAttribute('data-state'), 'failed');
    const failure = await failed.locator('.job-error').textContent();
    assert.match(failure, /source_not_found/);
    assert.match(failure, /not found/i);
    result.failed_job_error = failure;
    log(`failed job shows: ${failure}`);

    // A bad time: the server's invalid_timecode is shown next to the start field.
    await page.fill('#source', SOURCE);
    await page.fill('#start', '5');
    await page.fill('#stop', '00:00:04');
    allowedStatuses.add(400);
    await page.click('#submit');
    const startError = page.locator('#start-error');
    await startError.waitFor({ state: 'visible' });
    const startErrorText = await startError.textContent();
    assert.match(startErrorText, /invalid_timecode/);
    assert.equal(await page.getAttribute('#start', 'aria-invalid'), 'true');
    assert.ok(await page.locator('#start').evaluate((el) => el.parentElement.parentElement
      .contains(document.getElementById('start-error'))), 'the error sits in the start field');
    assert.equal((await focusInfo(page)).id, 'start', 'focus moves to the field in error');
    assert.ok(await page.locator('#stop-error').isHidden());
    allowedStatuses.delete(400);
    result.start_error = startErrorText;
    log(`start error: ${startErrorText}`);

    // Screenshots: desktop (full page) and phone width.
    await page.evaluate(() => {
      document.getElementById('toast').hidden = true;
      window.scrollTo(0, 0);
    });
    await page.locator('.job-player video').evaluate((v) => v.pause());
    await page.screenshot({ path: path.join(OUT, 'ui.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(overflow <= 390, `the page is ${overflow}px wide at a 390px viewport`);
    await page.screenshot({ path: path.join(OUT, 'ui-phone.png') });
    await page.setViewportSize({ width: 1280, height: 900 });
    log('screenshots taken');

    // API keys, against a second gateway that has them: a 401 asks for a key, a wrong key is
    // refused, the right one goes out as a Bearer header and, on the video URLs (which cannot
    // send headers), as ?key=; it survives a reload.
    if (KEYED_BASE) {
      allowedStatuses.add(401);
      await page.goto(`${KEYED_BASE}/ui`);
      const banner = page.locator('#banner');
      await banner.waitFor({ state: 'visible' });
      assert.match(await banner.textContent(), /needs an API key/);
      assert.equal(await page.getAttribute('#key-box', 'open'), '');
      assert.equal(await page.textContent('#jobs-empty'), 'Enter an API key to see the jobs.');
      await page.fill('#key', 'not-the-key');
      await page.press('#key', 'Enter');
      await waitFor('the wrong key to be refused', 10_000,
        async () => /refused the API key/.test(await banner.textContent()));
      await page.fill('#key', KEY);
      await page.press('#key', 'Enter');
      await banner.waitFor({ state: 'hidden' });
      await waitFor('the keyed listing', 10_000,
        async () => (await page.textContent('#jobs-empty')) === 'No jobs yet.');
      assert.equal(await page.evaluate(() => localStorage.getItem('hopster.apiKey')), KEY);
      assert.equal(await page.textContent('#key-state'), '(set)');

      await page.fill('#source', SOURCE);
      await page.fill('#start', '00:00:01');
      await page.fill('#stop', '00:00:02');
      await page.press('#stop', 'Enter');
      const keyedId = await newestJobId(page, []);
      const keyedRow = page.locator(`#jobs li.job[data-id="${keyedId}"]`);
      await waitForCompleted(keyedRow);
      const keyedVideo = `/v1/jobs/${keyedId}/video?key=${encodeURIComponent(KEY)}`;
      await keyedRow.locator('button.play').click();
      const player = keyedRow.locator('.job-player video');
      assert.equal(await player.getAttribute('src'), keyedVideo);
      await waitFor('the keyed clip to play', 20_000,
        () => player.evaluate((v) => v.currentTime > 0 && !v.error));
      const keyedLink = keyedRow.locator('a.download');
      assert.equal(await keyedLink.getAttribute('href'), keyedVideo);
      const [keyedDownload] = await Promise.all([page.waitForEvent('download'), keyedLink.click()]);
      const keyedClip = path.join(OUT, 'keyed-clip.mp4');
      await keyedDownload.saveAs(keyedClip);
      assert.equal(await keyedDownload.failure(), null);
      result.keyed_download = keyedClip;
      result.keyed_job_id = keyedId;

      await page.reload();
      await keyedRow.waitFor({ state: 'visible' });
      assert.ok(await banner.isHidden(), 'no key prompt after a reload with a saved key');
      assert.equal(await page.textContent('#key-state'), '(set)');
      allowedStatuses.delete(401);
      result.key_flow = true;
      log('API key flow works');
    } else {
      log('no HOPSTER_UI_KEYED_BASE_URL: API key flow skipped');
    }

    assert.deepEqual(consoleErrors, [], 'console errors');
    result.console_errors = consoleErrors;
    result.expected_network_errors = expectedNetworkErrors;
    result.screenshots = [path.join(OUT, 'ui.png'), path.join(OUT, 'ui-phone.png')];
  } catch (error) {
    try {
      const page = context.pages()[0];
      if (page) await page.screenshot({ path: path.join(OUT, 'failure.png'), fullPage: true });
    } catch {
      // the failure itself is what matters
    }
    if (consoleErrors.length) log(`console errors: ${JSON.stringify(consoleErrors)}`);
    throw error;
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  return result;
}

const watchdog = setTimeout(() => {
  log('the browser test took over 180 s');
  process.exit(3);
}, 180_000);
watchdog.unref();

main().then(
  (result) => {
    log('passed');
    process.stdout.write(`HOPSTER_UI_RESULT ${JSON.stringify(result)}\n`);
  },
  (error) => {
    log(`FAILED: ${error && error.stack ? error.stack : error}`);
    process.exitCode = 1;
  },
);
