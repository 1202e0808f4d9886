/**
 * The TypeScript client (`clients/typescript`) run for real, as a front end runs it: `every`
 * follows a list's `Link` pages to the last, and a refused page is a `ProblemError`.
 * Run with front-end.test.mts (TODO_API_URL, TODO_USER_ID, TODO_TOKEN).
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { createTodoClient, nextPageUrl, ProblemError } from "../../../clients/typescript/src/index.js";

const API_URL = required("TODO_API_URL");
const USER_ID = required("TODO_USER_ID");
const TOKEN = required("TODO_TOKEN");

const api = createTodoClient({ baseUrl: API_URL, token: () => TOKEN });
const path = { user_id: USER_ID };

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

test("the client's every() follows Link over every page", async () => {
  const tag = `client-${Date.now()}`;
  const titles = ["Client task 0", "Client task 1", "Client task 2", "Client task 3", "Client task 4"];
  for (const title of titles) {
    const { error } = await api.POST("/api/{user_id}/tasks", { params: { path }, body: { title, tags: [tag] } });
    assert.equal(error, undefined);
  }
  const first = await api.GET("/api/{user_id}/tasks", {
    params: { path, query: { tag: [tag], limit: 2, sort: "title" } },
  });
  assert.equal(first.data?.length, 2);
  assert.ok(nextPageUrl(first.response)?.includes("cursor="));

  const seen: string[] = [];
  for await (const task of api.every(first)) seen.push(`${task.title} ${task.user_id}`);

  assert.deepEqual(
    seen,
    titles.map((title) => `${title} ${USER_ID}`),
  );
});

test("the client's every() throws a refused page's problem", async () => {
  const refused = api.GET("/api/{user_id}/tasks", { params: { path, query: { limit: 0 } } });
  await assert.rejects(
    async () => {
      for await (const task of api.every(refused)) assert.fail(`no task expected, got ${task.id}`);
    },
    (error: unknown) => error instanceof ProblemError && error.problem.status === 422,
  );
});

test("nextPageUrl reads the next link among others (RFC 8288)", () => {
  const links = '<https://x.example/a?cursor=p>; rel="prev", <https://x.example/a?cursor=n&q=a,b>; rel="next"';
  assert.equal(nextPageUrl(new Response(null, { headers: { Link: links } })), "https://x.example/a?cursor=n&q=a,b");
  assert.equal(nextPageUrl(new Response(null, { headers: { Link: '<https://x.example/p>; rel="prev"' } })), null);
  assert.equal(nextPageUrl(new Response(null)), null);
});
