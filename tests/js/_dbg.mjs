
import { chromium } from "playwright-core";
const b = await chromium.launch({executablePath: "/usr/bin/chromium", headless: true, args: ["--no-sandbox"]});
const c = await b.newContext({httpCredentials: {username: "ops", password: "pw"}});
const p = await c.newPage();
const r = await p.goto(process.argv[2]);
console.log(r.status(), (await p.content()).slice(0, 300));
await b.close();
