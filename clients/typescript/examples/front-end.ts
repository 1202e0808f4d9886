/**
 * What a front end does with the client: type-checked in `make test` against the generated
 * types, so a change of the OpenAPI document that would break a front end breaks the build.
 * (Type-checked only: nothing here runs.)
 */
import {
  createTodoClient,
  type ChangeFeedPage,
  type Priority,
  type Problem,
  type Task,
  type TaskPatch,
} from "../src/index";

// A Next.js app passes its Better Auth session's token getter; tokens expire after 15 minutes.
declare function currentToken(): Promise<string>;

const api = createTodoClient({ baseUrl: "https://tasks.example.com", token: currentToken });

/** Every open high-priority task tagged `garden`, soonest due first: `every` follows each
 * page's `Link: <…>; rel="next"` to the last page. */
export async function openGardenTasks(userId: string): Promise<Task[]> {
  const tasks: Task[] = [];
  const first = api.GET("/api/{user_id}/tasks", {
    params: {
      path: { user_id: userId },
      query: { status: "pending", priority: ["high"], tag: ["garden"], sort: "due_at", limit: 100 },
    },
  });
  for await (const task of api.every(first)) tasks.push(task);
  return tasks;
}

/** The first page only, as a list component shows it: a plain array of tasks to `.map`. */
export async function firstPage(userId: string): Promise<string[]> {
  const { data, error } = await api.GET("/api/{user_id}/tasks", { params: { path: { user_id: userId } } });
  if (error) throw new Error(describe(error));
  return data.map((task) => `${task.title} (${task.user_id})`);
}

/** Create a task; the key makes a retry of this very request (after a timeout) create nothing more. */
export async function addTask(userId: string, title: string, dueAt: Date, priority: Priority): Promise<Task> {
  const { data, error, response } = await api.POST("/api/{user_id}/tasks", {
    params: { path: { user_id: userId }, header: { "Idempotency-Key": crypto.randomUUID() } },
    body: { title, priority, due_at: dueAt.toISOString(), tags: ["garden"] },
  });
  if (error) throw new Error(describe(error));
  const location: string | null = response.headers.get("Location");
  console.log(`created ${location} at version ${data.version}`);
  return data;
}

/** Change what the user edited, unless someone changed the task since it was shown (412). */
export async function saveEdits(userId: string, shown: Task, edits: TaskPatch): Promise<Task | "changed elsewhere"> {
  const { data, error } = await api.PATCH("/api/{user_id}/tasks/{task_id}", {
    params: { path: { user_id: userId, task_id: shown.id }, header: { "If-Match": `"${shown.version}"` } },
    body: edits,
  });
  if (error?.type === "/problems/precondition-failed") return "changed elsewhere";
  if (error) throw new Error(describe(error));
  return data;
}

/** Tick a task off, or back on: no body (or `{}`) toggles it. */
export async function toggle(task: Task): Promise<boolean> {
  const { data, error } = await api.PATCH("/api/{user_id}/tasks/{task_id}/complete", {
    params: { path: { user_id: task.user_id, task_id: task.id } },
    body: {},
  });
  if (error) throw new Error(describe(error));
  return data.completed;
}

/** Tick a task off; completing a repeating task creates the next one. */
export async function complete(userId: string, task: Task): Promise<string | null> {
  const { data, error } = await api.PATCH("/api/{user_id}/tasks/{task_id}/complete", {
    params: { path: { user_id: userId, task_id: task.id } },
    body: { completed: true },
  });
  if (error) throw new Error(describe(error));
  return data.next_occurrence_id;
}

export async function remove(userId: string, task: Task): Promise<void> {
  const { error } = await api.DELETE("/api/{user_id}/tasks/{task_id}", {
    params: { path: { user_id: userId, task_id: task.id } },
  });
  if (error) throw new Error(describe(error));
}

/** "Clear completed": delete every task shown as done in one batch, all or none (a task changed
 * since it was shown fails the whole batch with 412, and the problem names which one). */
export async function clearCompleted(userId: string, shown: Task[]): Promise<number | "changed elsewhere"> {
  const done = shown.filter((task) => task.completed);
  if (done.length === 0) return 0; // a batch holds 1 to 100 operations
  const { data, error } = await api.POST("/api/{user_id}/batch", {
    params: { path: { user_id: userId }, header: { "Idempotency-Key": crypto.randomUUID() } },
    body: {
      operations: done.map((task) => ({ op: "delete" as const, id: task.id, if_match: `"${task.version}"` })),
    },
  });
  if (error?.type === "/problems/batch-failed" && error.problem?.type === "/problems/precondition-failed") {
    return "changed elsewhere";
  }
  if (error) throw new Error(describe(error));
  return data.results.length;
}

/** Bring a local copy up to date: upsert what changed, drop what was deleted. */
export async function sync(
  userId: string,
  local: Map<string, Task>,
  since: string | undefined,
): Promise<string | "resync from a snapshot"> {
  let page: ChangeFeedPage;
  do {
    const { data, error, response } = await api.GET("/api/{user_id}/changes", {
      params: { path: { user_id: userId }, query: { since, limit: 200 } },
    });
    if (response.status === 410) return "resync from a snapshot";
    if (error) throw new Error(describe(error));
    page = data;
    for (const task of page.tasks) local.set(task.id, task);
    for (const id of page.deleted.tasks) local.delete(id);
    since = page.next_since;
  } while (page.has_more);
  return page.next_since;
}

/** A problem's message for the user, with the fields a form should mark. */
export function describe(problem: Problem): string {
  const fields = (problem.errors ?? []).map(({ field, message }) => `${field}: ${message}`);
  return [`${problem.title} (${problem.status}): ${problem.detail}`, ...fields].join("\n");
}

// Misuses the types must refuse; if the generated types ever degrade to `any`, these lines
// compile and tsc fails on the unused directives.
export async function misuses(userId: string, task: Task): Promise<void> {
  // @ts-expect-error: `urgent` is not a priority
  await api.POST("/api/{user_id}/tasks", { params: { path: { user_id: userId } }, body: { title: "x", priority: "urgent" } });
  // @ts-expect-error: a task needs a title
  await api.POST("/api/{user_id}/tasks", { params: { path: { user_id: userId } }, body: { priority: "low" } });
  // @ts-expect-error: the path names the user
  await api.GET("/api/{user_id}/tasks", { params: { query: { status: "pending" } } });
  // @ts-expect-error: `done` is not a status
  await api.GET("/api/{user_id}/tasks", { params: { path: { user_id: userId }, query: { status: "done" } } });
  // @ts-expect-error: no such path
  await api.GET("/api/{user_id}/todos", { params: { path: { user_id: userId } } });
  // @ts-expect-error: a version is a number
  const version: string = task.version;
  void version;
  const { error } = await api.DELETE("/api/{user_id}/tasks/{task_id}", {
    params: { path: { user_id: userId, task_id: task.id } },
  });
  // @ts-expect-error: deleting answers no such problem
  if (error?.type === "/problems/sync-expired") return;
}
