// A real Better Auth JWT issuer for the interop tests: the memory adapter, the JWT plugin and
// its `/api/auth/*` routes, plus `POST /mint {"email"}` -> `{"token", "user_id"}` so a test can
// get genuine tokens without a browser.
//
// Usage: node issuer.mjs [port]        (or PORT=...; 0 or nothing picks a free port)
//        BASE_URL=http://host:port     overrides the base URL (Better Auth's iss and aud)
//        JWT_ALG=EdDSA|ES256|RS256     the signing algorithm (Better Auth's default: EdDSA)
// Prints `READY <port>` on stdout once it accepts connections.
import http from "node:http";
import { betterAuth } from "better-auth";
import { memoryAdapter } from "better-auth/adapters/memory";
import { toNodeHandler } from "better-auth/node";
import { jwt } from "better-auth/plugins/jwt";

const HOST = "127.0.0.1";
// Every test user shares it: the tests are about tokens, not passwords.
const PASSWORD = "interop-password-1234";

function createAuth(baseURL) {
  return betterAuth({
    baseURL,
    // A fixed secret is fine: the memory adapter forgets everything when the process ends.
    secret: process.env.BETTER_AUTH_SECRET ?? "todo-interop-issuer-secret-not-for-production",
    database: memoryAdapter({ user: [], session: [], account: [], verification: [], jwks: [] }),
    emailAndPassword: { enabled: true },
    // The tests mint many tokens quickly from one address.
    rateLimit: { enabled: false },
    telemetry: { enabled: false },
    plugins: [jwt({ jwks: { keyPairConfig: { alg: process.env.JWT_ALG ?? "EdDSA" } } })],
  });
}

async function sessionCookie(auth, email) {
  const body = { email, password: PASSWORD, name: email.split("@")[0] };
  let result;
  try {
    result = await auth.api.signUpEmail({ body, returnHeaders: true });
  } catch {
    // Already signed up: a second token for the same user.
    result = await auth.api.signInEmail({ body, returnHeaders: true });
  }
  const cookie = result.headers
    .getSetCookie()
    .map((line) => line.split(";")[0])
    .join("; ");
  return { cookie, userId: result.response.user.id };
}

async function mint(auth, baseURL, req, res) {
  let email;
  try {
    email = JSON.parse(await readBody(req)).email;
  } catch {
    email = undefined;
  }
  if (typeof email !== "string" || !email.includes("@")) {
    return sendJson(res, 400, { error: "POST a JSON body {\"email\": \"...\"}" });
  }
  const { cookie, userId } = await sessionCookie(auth, email);
  const response = await auth.handler(
    new Request(`${baseURL}/api/auth/token`, { headers: { cookie } }),
  );
  if (!response.ok) {
    return sendJson(res, 502, { error: `/api/auth/token answered ${response.status}` });
  }
  const { token } = await response.json();
  return sendJson(res, 200, { token, user_id: userId });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function sendJson(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

const requestedPort = Number(process.argv[2] ?? process.env.PORT ?? 0);
let auth;
let baseURL;
let authHandler;

const server = http.createServer((req, res) => {
  if (req.url.startsWith("/api/auth/")) {
    return authHandler(req, res);
  }
  if (req.method === "POST" && req.url === "/mint") {
    return mint(auth, baseURL, req, res).catch((error) => {
      console.error(error);
      sendJson(res, 500, { error: String(error?.message ?? error) });
    });
  }
  return sendJson(res, 404, { error: "not found" });
});

// The base URL (Better Auth's iss and aud) needs the port, known only once listening; no
// request can arrive before READY is printed.
server.listen(requestedPort, HOST, () => {
  const { port } = server.address();
  baseURL = process.env.BASE_URL ?? `http://${HOST}:${port}`;
  auth = createAuth(baseURL);
  authHandler = toNodeHandler(auth);
  console.log(`READY ${port}`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
