// What the browser flows run against: a database cloned from the migrated template, a real
// nudge-api and nudge-worker on it, and one headless Chromium (Debian's), all started once and
// shared by every flow. Configured as the C++ suites are (NUDGE_TEST_ADMIN_URL,
// NUDGE_TEST_TEMPLATE, NUDGE_TEST_BIN_DIR).

import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:net";
import { mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const adminUrl = process.env.NUDGE_TEST_ADMIN_URL || "postgresql://postgres@127.0.0.1:55433/postgres";
const template = process.env.NUDGE_TEST_TEMPLATE || "nudge_template";
const binDir = process.env.NUDGE_TEST_BIN_DIR || process.env.NUDGE_BIN_DIR;
const chromiumPath = process.env.NUDGE_CHROMIUM || "/usr/bin/chromium";

// postgresql://u@h:p/db?x -> the same with another database name.
function withDatabase(url, name) {
  const u = new URL(url);
  u.pathname = "/" + name;
  return u.toString();
}

function psql(sql) {
  execFileSync("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", adminUrl, "-c", sql], { stdio: "pipe" });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Polls `check` until it answers something truthy, or throws after `ms`.
export async function waitUntil(check, ms = 20000, what = "the condition") {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let stacks = 0;

export class Stack {
  async start({ api = {}, worker = {} } = {}) {
    if (!binDir) throw new Error("NUDGE_TEST_BIN_DIR (the build's bin directory) is not set");
    this.logDir = mkdtempSync(join(tmpdir(), "nudge-browser-"));
    this.dbName = `nudge_t_browser_${process.pid}_${++stacks}`;
    psql(`DROP DATABASE IF EXISTS ${this.dbName} WITH (FORCE)`);
    psql(`CREATE DATABASE ${this.dbName} TEMPLATE ${template}`);
    this.dbUrl = withDatabase(adminUrl, this.dbName);
    this.port = await freePort();
    this.base = `http://127.0.0.1:${this.port}`;
    // The flows' webhook receiver is on loopback, which the SSRF guard refuses unless opened.
    const common = {
      ...process.env,
      NUDGE_DATABASE_URL: this.dbUrl,
      NUDGE_LOG_LEVEL: "info",
      NUDGE_WEBHOOK_ALLOW_PRIVATE: "127.0.0.0/8,::1/128",
    };
    this.children = [
      // Auth off (on loopback, as scripts/run.sh runs it) unless `api` turns it on.
      this.spawn("nudge-api", { ...common, NUDGE_API_AUTH: "off", NUDGE_API_PORT: String(this.port), ...api }),
      this.spawn("nudge-worker", { ...common, NUDGE_WORKER_IDLE_CAP_SECONDS: "300", ...worker }),
    ];
    await waitUntil(async () => {
      try {
        return (await fetch(this.base + "/health")).ok;
      } catch {
        return false;
      }
    }, 60000, "nudge-api to answer /health");
    this.browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });
    return this;
  }

  spawn(program, env) {
    const log = join(this.logDir, program + ".log");
    const out = openSync(log, "a");
    const child = spawn(join(binDir, program), [], { env, stdio: ["ignore", out, out] });
    child.logPath = log;
    return child;
  }

  logs() {
    return this.children.map((c) => `--- ${c.logPath}\n` + readFileSync(c.logPath, "utf8").slice(-4000)).join("\n");
  }

  // Runs `statement` in this stack's database (a state the API cannot make quickly).
  sql(statement) {
    execFileSync("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", this.dbUrl, "-c", statement], { stdio: "pipe" });
  }

  // A new token with `scopes` ("read,write"), made with `nudge-api token create`.
  createToken(name, scopes) {
    const out = execFileSync(join(binDir, "nudge-api"), ["token", "create", "--name", name, "--scopes", scopes], {
      env: { ...process.env, NUDGE_DATABASE_URL: this.dbUrl },
      stdio: ["ignore", "pipe", "pipe"],
    });
    return String(out).split("\n")[0].trim();
  }

  // A JSON call to the API, as a client other than the page (with `token` where auth is on).
  async api(method, path, body, token) {
    const headers = body === undefined ? {} : { "Content-Type": "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    const res = await fetch(this.base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  async stop(keepLogs) {
    if (this.browser) await this.browser.close();
    for (const c of this.children || []) {
      if (c.exitCode !== null) continue;
      const exited = new Promise((r) => c.once("exit", r));
      c.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10000))]);
      if (c.exitCode === null) c.kill("SIGKILL");
    }
    if (this.dbName) {
      try {
        psql(`DROP DATABASE IF EXISTS ${this.dbName} WITH (FORCE)`);
      } catch {
        // a leftover test database is dropped by the next scripts/test.sh run
      }
    }
    if (this.logDir && !keepLogs) rmSync(this.logDir, { recursive: true, force: true });
  }
}
