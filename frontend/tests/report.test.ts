import { afterEach, describe, expect, it, vi } from "vitest";
import {
  buildPayload,
  descriptionLength,
  EMPTY_DRAFT,
  errorsFromBody,
  localDateTimeToIso,
  newIdempotencyKey,
  submitReport,
  validateDraft,
} from "../src/report";
import { jsonResponse, scriptedFetch } from "./helpers";

const categories = [
  { id: "harassment", label: "Harassment" },
  { id: "theft", label: "Theft" },
];
const ctx = { categories, descriptionMax: 500, now: new Date("2026-06-01T12:00:00Z") };
const good = { ...EMPTY_DRAFT, lat: 51.5, lon: -0.1, category: "theft" };

describe("validateDraft", () => {
  it("accepts a complete draft", () => {
    expect(validateDraft(good, ctx)).toEqual({});
  });

  it("asks for a place and a category", () => {
    const errors = validateDraft(EMPTY_DRAFT, ctx);
    expect(errors.location).toMatch(/choose a place/i);
    expect(errors.category).toBe("Choose a category.");
    expect(errors.description).toBeUndefined();
  });

  it("rejects a category that is not in the list", () => {
    expect(validateDraft({ ...good, category: "nope" }, ctx).category).toMatch(/from the list/);
  });

  it("rejects coordinates off the map", () => {
    expect(validateDraft({ ...good, lat: 91 }, ctx).location).toMatch(/outside the map/);
    expect(validateDraft({ ...good, lon: Number.NaN }, ctx).location).toMatch(/outside the map/);
  });

  it("counts the description after trimming, in characters", () => {
    const exactly = `  ${"é".repeat(500)}  `;
    expect(validateDraft({ ...good, description: exactly }, ctx).description).toBeUndefined();
    const over = "x".repeat(502);
    expect(validateDraft({ ...good, description: over }, ctx).description).toBe(
      "Description is too long: 2 characters over the limit of 500.",
    );
    // An emoji is one character, although JavaScript counts two code units.
    expect(descriptionLength("😀")).toBe(1);
    // A decomposed é (e + combining accent) is one character after NFC.
    expect(descriptionLength("e\u0301")).toBe(1);
    // Control and bidi characters are stripped, as the server does.
    expect(descriptionLength("a\u200b\u202eb\u0007")).toBe(2);
  });

  it("rejects a time in the future and an unreadable time", () => {
    expect(validateDraft({ ...good, occurredAt: "2027-01-01T00:00" }, ctx).occurred_at).toMatch(/future/);
    expect(validateDraft({ ...good, occurredAt: "2026-02-31T00:00" }, ctx).occurred_at).toMatch(/date and time/);
    expect(validateDraft({ ...good, occurredAt: "2026-05-31T08:15" }, ctx).occurred_at).toBeUndefined();
    expect(validateDraft({ ...good, occurredAt: "1999-12-30T08:15" }, ctx).occurred_at).toMatch(/2000 or later/);
  });
});

describe("buildPayload", () => {
  it("trims the description and leaves out empty optional fields", () => {
    expect(buildPayload({ ...good, description: "   " })).toEqual({ lat: 51.5, lon: -0.1, category: "theft" });
    expect(buildPayload({ ...good, description: "  dark underpass \n" }).description).toBe("dark underpass");
  });

  it("sends the time with the local offset", () => {
    const iso = localDateTimeToIso("2026-05-31T08:15");
    expect(iso).toMatch(/^2026-05-31T08:15:00[+-]\d{2}:\d{2}$/);
    expect(Date.parse(iso as string)).toBe(new Date(2026, 4, 31, 8, 15).getTime());
    expect(buildPayload({ ...good, occurredAt: "2026-05-31T08:15" }).occurred_at).toBe(iso);
  });
});

describe("newIdempotencyKey", () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it("makes distinct v4 UUIDs", () => {
    const a = newIdempotencyKey();
    const b = newIdempotencyKey();
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a).not.toBe(b);
  });

  it("works without crypto.randomUUID (insecure context)", () => {
    const real = globalThis.crypto;
    vi.stubGlobal("crypto", { getRandomValues: (a: Uint8Array) => real.getRandomValues(a) });
    expect(newIdempotencyKey()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe("errorsFromBody", () => {
  it("places each error next to its field, in plain words", () => {
    expect(
      errorsFromBody(
        {
          error: "validation_failed",
          message: "lat: must be between -90 and 90",
          field: "lat",
          errors: [
            { field: "lat", message: "lat: must be between -90 and 90" },
            { field: "description", message: "description: must be at most 500 characters" },
            { field: null, message: "something else" },
          ],
        },
        "fallback",
      ),
    ).toEqual({
      location: "Latitude must be between -90 and 90.",
      description: "Description must be at most 500 characters.",
      form: "Something else.",
    });
  });

  it("uses field and message when there is no list", () => {
    expect(errorsFromBody({ error: "validation", message: "Unknown category", field: "category" }, "x")).toEqual({
      category: "Unknown category.",
    });
    expect(
      errorsFromBody({ error: "validation_failed", message: "occurred_at: must not be in the future", field: "occurred_at", errors: [] }, "x"),
    ).toEqual({ occurred_at: "Time must not be in the future." });
    expect(errorsFromBody(null, "Bad request")).toEqual({ form: "Bad request." });
  });
});

describe("submitReport", () => {
  const payload = { lat: 1, lon: 2, category: "theft" };

  it("posts JSON with the Idempotency-Key and returns the id", async () => {
    const f = scriptedFetch([jsonResponse(202, { id: "r-1", status: "queued" })]);
    await expect(submitReport(payload, "key-1", f.fetch)).resolves.toEqual({ kind: "accepted", id: "r-1" });
    expect(f.calls[0]).toMatchObject({
      url: "/api/safetyheatmap/report/add",
      method: "POST",
      headers: { "idempotency-key": "key-1", "content-type": "application/json" },
      body: payload,
    });
  });

  it("treats 422 as a rejection of this body", async () => {
    const f = scriptedFetch([
      jsonResponse(422, { error: "invalid_field", message: "Unknown category", field: "category", errors: [] }),
    ]);
    await expect(submitReport(payload, "k", f.fetch)).resolves.toEqual({
      kind: "rejected",
      errors: { category: "Unknown category." },
    });
  });

  it("treats 429 as retry later, with Retry-After", async () => {
    const f = scriptedFetch([
      jsonResponse(429, { error: "rate_limited", message: "slow down", field: null }, { "Retry-After": "30" }),
    ]);
    const outcome = await submitReport(payload, "k", f.fetch);
    expect(outcome.kind).toBe("retry");
    expect(outcome.kind === "retry" && outcome.retryAfter).toBe(30);
    expect(outcome.kind === "retry" && outcome.errors.form).toMatch(/Too many reports.*30 seconds/);
  });

  it("treats 503 and network failures as retry", async () => {
    const f = scriptedFetch([
      jsonResponse(503, { error: "unavailable", message: "queue down", field: null }, { "Retry-After": "5" }),
      new TypeError("Failed to fetch"),
    ]);
    const busy = await submitReport(payload, "k", f.fetch);
    expect(busy).toMatchObject({ kind: "retry", retryAfter: 5 });
    const down = await submitReport(payload, "k", f.fetch);
    expect(down.kind).toBe("retry");
    expect(down.kind === "retry" && down.errors.form).toMatch(/could not be reached/);
  });

  it("says so when the browser is offline", async () => {
    const spy = vi.spyOn(window.navigator, "onLine", "get").mockReturnValue(false);
    const f = scriptedFetch([new TypeError("Failed to fetch")]);
    const outcome = await submitReport(payload, "k", f.fetch);
    expect(outcome.kind === "retry" && outcome.errors.form).toMatch(/You are offline/);
    spy.mockRestore();
  });

  it("maps 413 to the description and 415/400 to the form", async () => {
    const f = scriptedFetch([
      new Response("", { status: 413 }),
      jsonResponse(415, { error: "unsupported_media_type", message: "Send JSON", field: null }),
    ]);
    expect(await submitReport(payload, "k", f.fetch)).toEqual({
      kind: "rejected",
      errors: { description: "The report is too large. Shorten the description." },
    });
    expect(await submitReport(payload, "k", f.fetch)).toEqual({ kind: "rejected", errors: { form: "Send JSON." } });
  });
});
