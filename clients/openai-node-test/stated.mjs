// A live stated server for the tests: built from this repository, run as a real
// process on 127.0.0.1 with its built-in provider simulator and a fresh data
// directory, stopped and started again on the same data and address.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export class Stated {
  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'stated-openai-node-'));
    this.bin = join(this.dir, 'stated');
    this.data = join(this.dir, 'data');
    this.addr = '127.0.0.1:0';
    this.proc = null;
  }

  // build compiles the stated binary once.
  build() {
    execFileSync('go', ['build', '-o', this.bin, './cmd/stated'], { cwd: root, stdio: 'inherit' });
  }

  // start runs `stated serve` and resolves once it listens. After the first start
  // it listens on the same address again.
  start() {
    const proc = spawn(this.bin, ['serve', '--addr', this.addr, '--data', this.data], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.proc = proc;
    return new Promise((resolveStart, reject) => {
      const timer = setTimeout(() => reject(new Error('stated did not listen within 20s')), 20000);
      let buf = '';
      proc.stderr.setEncoding('utf8');
      proc.stderr.on('data', (chunk) => {
        buf += chunk;
        const m = /msg="stated listening" addr=(\S+)/.exec(buf);
        if (m && this.proc === proc && !proc.listening) {
          proc.listening = true;
          clearTimeout(timer);
          this.addr = m[1];
          resolveStart(this);
        }
      });
      proc.on('exit', (code) => {
        if (!proc.listening) {
          clearTimeout(timer);
          reject(new Error(`stated exited with ${code} before listening:\n${buf}`));
        }
      });
    });
  }

  get baseURL() {
    return `http://${this.addr}/v1`;
  }

  // stop ends the process with SIGTERM (an orderly shutdown) or SIGKILL (a crash)
  // and resolves once it has exited.
  stop(signal = 'SIGTERM') {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
    return new Promise((done) => {
      proc.on('exit', () => done());
      proc.kill(signal);
    });
  }

  async close() {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// recordingFetch is a fetch that keeps the body of every request it sends, so a
// test can see what went over the wire.
export function recordingFetch(bodies) {
  return async (url, init) => {
    bodies.push({ url: String(url), body: typeof init?.body === 'string' ? init.body : '' });
    return fetch(url, init);
  };
}

// longSystem is a system prompt long enough for the provider's prompt cache.
export function longSystem() {
  const lines = ['You are the assistant of a travel agency. Follow these rules.'];
  for (let i = 0; i < 160; i++) {
    lines.push(`Rule ${i}: when a customer asks about booking ${1000 + i * 7}, check the ` +
      'fare class, the date and the seat map before you answer.');
  }
  return lines.join('\n');
}
