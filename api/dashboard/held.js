// Whether a webhook reminder's delivery is held by its host's circuit breaker (GET /v1/targets).
// The breaker's key is the target's scheme://host:port, as nudge.target_host writes it, or
// {{secret.NAME}} for a URL kept in a secret; a reminder sent to its entity's contact has no
// target here to match.

import { api, hasRoute } from "./api.js";

export function breakerKey(target) {
  if (/^\{\{secret\.[a-z0-9_]{1,64}\}\}$/.test(target)) return target;
  let url;
  try {
    url = new URL(target);
  } catch {
    return null;
  }
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  return `${url.protocol}//${url.hostname}:${port}`;
}

// The open or probing breaker holding reminder `r`'s occurrence, or null.
export async function holdingBreaker(r) {
  if (r.channel !== "webhook" || !r.target || !r.retrying_occurrence) return null;
  const key = breakerKey(r.target);
  if (!key || !(await hasRoute("/v1/targets"))) return null;
  const pages = await Promise.all(["open", "probing"].map((state) => api("GET", `/v1/targets?state=${state}&limit=100`)));
  return pages.flatMap((p) => p.items).find((t) => t.host === key) ?? null;
}
