/**
 * The API as a Next.js front end uses it: plain `fetch`, the way the Phase II apps' `lib/api.ts`
 * calls `/api/{user_id}/tasks` (a JSON body and a bearer token on every call), and each answer
 * used as their pages use it: `setTasks(await res.json())`, then `tasks.map(…)`.
 *
 * Run by node's own test runner against a live server (tests/interop/test_front_end_consumer.py):
 * TODO_API_URL, TODO_USER_ID and TODO_TOKEN say where and as whom.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

const API_URL = required("TODO_API_URL");
const USER_ID = required("TODO_USER_ID");
const TOKEN = required("TODO_TOKEN");

/** A task as such an app declares it (its own interface, not generated from the document). */
interface Task {
  id: string;
  user_id: string;
  title: string;
  description: string;
  completed: boolean;
  tags: string[];
  created_at: string;
  updated_at: string;
}

interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: { field: string; message: string }[];
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/** The apps' `lib/api.ts`: every call sends JSON headers and the token, and throws the problem's `detail`. */
async function request(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(path.startsWith("http") ? path : `${API_URL}/api/${encodeURIComponent(USER_ID)}${path}`, {
    ...init,
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${TOKEN}`, ...init.headers },
  });
}

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await request(path, init);
  if (!res.ok) {
    const problem = (await res.json()) as Problem;
    throw new Error(problem.detail);
  }
  return (res.status === 204 ? undefined : await res.json()) as T;
}

const createTask = (title: string, tags: string[] = []): Promise<Task> =>
  api<Task>("/tasks", { method: "POST", body: JSON.stringify({ title, tags }) });

/** The next page's URL from `Link: <…>; rel="next"` (RFC 8288), or null on the last page. */
function nextPage(res: Response): string | null {
  const link = res.headers.get("Link");
  const found = link && /<([^>]*)>\s*;\s*rel="?next"?/.exec(link);
  return found ? found[1] : null;
}

test("lists the tasks as an array a page can .map, each naming its owner", async () => {
  const tag = `list-${Date.now()}`;
  await createTask("Buy milk", [tag]);
  await createTask("Call mom", [tag]);

  const tasks = await api<Task[]>(`/tasks?tag=${tag}&sort=title`);

  assert.ok(Array.isArray(tasks));
  assert.deepEqual(
    tasks.map((task) => task.title),
    ["Buy milk", "Call mom"],
  );
  assert.deepEqual(new Set(tasks.map((task) => task.user_id)), new Set([USER_ID]));
  // Some apps build a task's URL from its `user_id`.
  const [first] = tasks;
  const again = await api<Task>(`${API_URL}/api/${encodeURIComponent(first.user_id)}/tasks/${first.id}`);
  assert.equal(again.id, first.id);
  // Every other list is an array too.
  for (const path of ["/categories", "/tags", "/reminders", "/calendar-feeds"]) {
    assert.ok(Array.isArray(await api<unknown[]>(path)), path);
  }
});

test("creates a task", async () => {
  const res = await request("/tasks", { method: "POST", body: JSON.stringify({ title: "Write report" }) });

  assert.equal(res.status, 201);
  const task = (await res.json()) as Task;
  assert.equal(task.title, "Write report");
  assert.equal(task.completed, false);
  assert.equal(task.user_id, USER_ID);
  assert.equal(res.headers.get("Location"), `/api/${encodeURIComponent(USER_ID)}/tasks/${task.id}`);
});

test("toggles completion with a {} body and with no body", async () => {
  const task = await createTask("Water plants");
  const toggle = `/tasks/${task.id}/complete`;

  const withEmptyObject = await api<Task>(toggle, { method: "PATCH", body: "{}" });
  const withNoBody = await api<Task>(toggle, { method: "PATCH" });
  const explicitly = await api<Task>(toggle, { method: "PATCH", body: JSON.stringify({ completed: true }) });

  assert.equal(withEmptyObject.completed, true);
  assert.equal(withNoBody.completed, false);
  assert.equal(explicitly.completed, true);
});

test("edits a task", async () => {
  const task = await createTask("Draft");

  const patched = await api<Task>(`/tasks/${task.id}`, {
    method: "PATCH",
    body: JSON.stringify({ title: "Final", description: "for Monday" }),
  });
  const replaced = await api<Task>(`/tasks/${task.id}`, { method: "PUT", body: JSON.stringify({ title: "Sent" }) });

  assert.deepEqual([patched.title, patched.description], ["Final", "for Monday"]);
  assert.deepEqual([replaced.title, replaced.description], ["Sent", ""]);
  assert.equal((await api<Task>(`/tasks/${task.id}`)).title, "Sent");
});

test("deletes a task", async () => {
  const task = await createTask("Old idea");

  const res = await request(`/tasks/${task.id}`, { method: "DELETE" });

  assert.equal(res.status, 204);
  await assert.rejects(api<Task>(`/tasks/${task.id}`), { message: /not found/i });
  const remaining = await api<Task[]>("/tasks?limit=200");
  assert.ok(!remaining.some((t) => t.id === task.id));
});

test("follows Link from page to page to the last", async () => {
  const tag = `paged-${Date.now()}`;
  const made: string[] = [];
  for (let n = 0; n < 5; n++) made.push((await createTask(`Page task ${n}`, [tag])).id);

  const pages: Task[][] = [];
  let url: string | null = `/tasks?tag=${tag}&limit=2&sort=title`;
  while (url !== null) {
    const res = await request(url);
    assert.equal(res.status, 200);
    pages.push((await res.json()) as Task[]);
    url = nextPage(res);
    if (url !== null) assert.match(url, /^https?:\/\/.*[?&]cursor=/);
    assert.ok(pages.length <= 5, "paging does not end");
  }

  assert.deepEqual(
    pages.map((page) => page.length),
    [2, 2, 1],
  );
  assert.deepEqual(
    pages.flat().map((task) => task.id),
    made,
  );
});

test("reads a problem's detail", async () => {
  const invalid = await request("/tasks", { method: "POST", body: JSON.stringify({ title: "   " }) });
  assert.equal(invalid.status, 422);
  assert.equal(invalid.headers.get("Content-Type"), "application/problem+json");
  const problem = (await invalid.json()) as Problem;
  assert.equal(typeof problem.detail, "string");
  assert.deepEqual(
    problem.errors?.map((error) => error.field),
    ["title"],
  );

  // A misspelt query parameter is refused, not ignored, and the detail says what to send.
  await assert.rejects(api<Task[]>("/tasks?search=milk"), { message: /`search`.*`q`/ });
  await assert.rejects(api<Task[]>("/tasks?order=desc"), { message: /`order`.*`sort`/ });
});
