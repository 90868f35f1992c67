// The chat page in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core): a turn streams, a reload in the middle of the answer
// resumes it and shows it exactly once, and the page is laid out at desktop and
// phone widths. Screenshots go to $STATED_SCREENSHOTS (default: a temporary
// directory, printed).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { resumeSession } from '../stated.js';
import {
  startServer, startSlowServer, startAuthServer, startProxy, haveChromium,
} from './helpers.mjs';

const T = { timeout: 90000 };
const skip = !haveChromium && !process.env.CI
  ? 'chromium is not installed (apt-get install chromium)' : false;

const shots = process.env.STATED_SCREENSHOTS ||
  path.join(os.tmpdir(), 'stated-screenshots');

let browser; // a persistent context on a new, empty profile
let profile;
let slow;
let fast;
let authed;

before(async () => {
  if (skip) return;
  const { chromium } = await import('playwright-core');
  profile = mkdtempSync(path.join(os.tmpdir(), 'stated-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
  });
  // Eight tokens a second: an answer takes several seconds.
  [slow, fast, authed] = await Promise.all([startSlowServer({ tokensPerSecond: 8 }),
    startServer(), startAuthServer()]);
  mkdirSync(shots, { recursive: true });
}, T);

after(async () => {
  await browser?.close();
  await Promise.all([slow?.stop(), fast?.stop(), authed?.stop()]);
  if (profile) rmSync(profile, { recursive: true, force: true });
});

// newPage opens a page that records script errors and violations of the
// page's security policy, except console errors that match expected.
async function newPage(viewport, expected = /status of 404/) {
  const page = await browser.newPage();
  if (viewport) await page.setViewportSize(viewport);
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !expected.test(m.text())) page.errors.push(m.text());
  });
  return page;
}

const answerText = () => document.querySelector('.msg.assistant .body')?.textContent ?? '';

test('a turn streams, and a reload in the middle of the answer shows it exactly once',
  { ...T, skip }, async () => {
    const proxy = await startProxy(slow.addr); // to see which frames the page got
    const page = await newPage();
    try {
      await page.goto(`http://${proxy.addr}/`);
      await page.fill('#input', 'Tell me how sessions survive a reload.');
      await page.keyboard.press('Enter');

      // It streams: the answer grows while it is marked as streaming.
      await page.waitForFunction(() =>
        document.querySelector('.msg.assistant.streaming .body')?.textContent.length > 0);
      const first = (await page.evaluate(answerText)).length;
      await page.waitForFunction((n) =>
        document.querySelector('.msg.assistant.streaming .body')?.textContent.length > n,
      first);
      const id = new URL(page.url()).searchParams.get('session');
      assert.match(id ?? '', /^[a-z0-9]+$/, 'the session ID is not in the URL');

      // Reload in the middle of the answer.
      assert.equal(await page.locator('.msg.assistant.streaming').count(), 1);
      await page.reload();
      await page.waitForSelector('.msg.assistant:not(.streaming)', { timeout: 60000 });
      assert.ok(proxy.saw('"type":"partial"'),
        'the reloaded page did not resume in the middle of the answer');

      const log = (await resumeSession({ url: `ws://${slow.addr}` }, { sessionId: id }));
      log.close();
      const stored = log.history.find((e) => e.kind === 'assistant');
      assert.equal(stored.status, 'complete');
      assert.equal(await page.locator('.msg.assistant').count(), 1);
      assert.equal(await page.locator('.msg.user').count(), 1);
      assert.equal(await page.evaluate(answerText), stored.text,
        'the answer on the page is not the stored answer, once');
      assert.equal(await page.locator('.msg.assistant .chip.cost').count(), 1);
      assert.equal(await page.locator(`.conv[href*="${id}"]`).count(), 1,
        'the conversation is not in the list');
      assert.deepEqual(page.errors, []);
    } finally {
      await page.close();
      await proxy.close();
    }
  });

// A system prompt long enough for the provider to cache.
const SYSTEM = Array.from({ length: 160 },
  (_, i) => `Rule ${i + 1}: answer plainly, cite policy section ${i + 1}, and be brief.`)
  .join('\n');

const QUESTIONS = [
  'How does a stateful server keep the prompt cache warm?',
  'What happens to an answer when my connection drops?',
  'Summarize that in two sentences.',
];

test('the page is laid out at desktop and phone widths', { ...T, skip }, async () => {
  const page = await newPage({ width: 1280, height: 800 });
  try {
    await page.goto(`http://${fast.addr}/`);
    await page.evaluate((system) => localStorage.setItem('stated.settings.v1',
      JSON.stringify({ system })), SYSTEM);
    await page.screenshot({ path: path.join(shots, 'desktop-empty.png') });
    for (const q of QUESTIONS) {
      const before = await page.locator('.msg.assistant:not(.streaming)').count();
      await page.fill('#input', q);
      await page.keyboard.press('Enter');
      await page.waitForFunction((n) =>
        document.querySelectorAll('.msg.assistant:not(.streaming)').length > n, before);
    }
    assert.equal(await page.locator('.msg.assistant').count(), QUESTIONS.length);
    assert.ok(await page.locator('.chip.cache').count() >= 2, 'no answer read from the cache');
    await page.screenshot({ path: path.join(shots, 'desktop-chat.png') });
    await page.click('#tab-usage');
    await page.waitForSelector('#usage svg.chart path.line-stated');
    await page.screenshot({ path: path.join(shots, 'desktop-usage.png') });
    await page.waitForSelector('#usage .usage-section + .usage-section h2 ~ *');
    await page.evaluate(() => { document.getElementById('usage-view').scrollTop = 1e6; });
    await page.screenshot({ path: path.join(shots, 'desktop-usage-ledger.png') });
    const url = page.url();

    // A phone opens the same conversation from its URL.
    const phone = await newPage({ width: 390, height: 844 });
    try {
      await phone.goto(url);
      await phone.waitForSelector('.msg.assistant:not(.streaming) .chip.cost');
      assert.equal(await phone.locator('.msg.assistant').count(), QUESTIONS.length);
      assert.ok(await phone.evaluate(() => {
        const sc = document.getElementById('scroller');
        return sc.scrollHeight - sc.scrollTop - sc.clientHeight < 4;
      }), 'the conversation is not scrolled to its end');
      const overflow = await phone.evaluate(() =>
        document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
      await phone.screenshot({ path: path.join(shots, 'phone-chat.png') });
      await phone.click('#menu');
      await phone.waitForFunction(() =>
        document.getElementById('sidebar').getBoundingClientRect().left >= 0);
      await phone.screenshot({ path: path.join(shots, 'phone-conversations.png') });
      await phone.click('#scrim', { position: { x: 370, y: 400 } });
      await phone.waitForFunction(() =>
        document.getElementById('sidebar').getBoundingClientRect().right <= 0);
      await phone.click('#tab-usage');
      await phone.waitForSelector('#usage svg.chart');
      await phone.screenshot({ path: path.join(shots, 'phone-usage.png'), fullPage: true });
      assert.deepEqual(phone.errors, []);
    } finally {
      await phone.close();
    }
    assert.deepEqual(page.errors, []);
    console.log(`# screenshots in ${shots}`);
  } finally {
    await page.close();
  }
});

test('with authentication on, the page asks for a key and then works with it',
  { ...T, skip }, async () => {
    // The refused handshakes and ticket requests log 401s; nothing else may fail.
    const page = await newPage(undefined, /\b401\b|HTTP Authentication failed/);
    try {
      await page.goto(`http://${authed.addr}/`);
      await page.fill('#input', 'Hello?');
      await page.keyboard.press('Enter');
      await page.waitForSelector('#banner:not([hidden]) >> text=asks for an API key');
      assert.equal(await page.locator('.msg.user').count(), 0, 'a refused turn is still shown');
      assert.equal(await page.inputValue('#input'), 'Hello?', 'the refused text was lost');

      await page.screenshot({ path: path.join(shots, 'desktop-needs-key.png') });
      await page.click('#banner-action');
      await page.fill('#api-key', authed.key);
      await page.screenshot({ path: path.join(shots, 'desktop-settings.png') });
      await page.click('#settings-save');
      await page.waitForSelector('#settings', { state: 'hidden' });
      await page.focus('#input');
      await page.keyboard.press('Enter');
      await page.waitForSelector('.msg.assistant:not(.streaming) .chip.cost');
      assert.ok(page.url().includes('session='));

      await page.reload(); // the key lasts as long as the tab
      await page.waitForSelector('.msg.assistant:not(.streaming) .chip.cost');
      assert.equal(await page.locator('.msg.user').count(), 1);
      assert.equal(await page.locator('.msg.assistant').count(), 1);
      assert.deepEqual(page.errors, []);
    } finally {
      await page.close();
    }
  });
