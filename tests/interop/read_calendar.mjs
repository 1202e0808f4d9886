// Reads one iCalendar document from stdin with ical.js (Thunderbird's parser) and prints, as
// JSON, what it understood: every error it raised, and per VTODO the values a calendar app shows.
// Instants are POSIX seconds; an all-day date is "YYYY-MM-DD". A TZID is resolved as ical.js
// resolves it: with the VTIMEZONE of the file first.
import ICAL from "ical.js";

const OCCURRENCES = 5;
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const errors = [];
const todos = {};

function moment(time) {
  return time.isDate ? time.toString() : time.toUnixTime();
}

function guarded(what, read) {
  try {
    return read();
  } catch (error) {
    errors.push(`${what}: ${error.message}`);
    return null;
  }
}

function readAll(component) {
  // Every value is decoded lazily: read them all, so that a bad one shows as an error.
  for (const property of component.getAllProperties()) {
    guarded(`${component.name} ${property.name}`, () => property.getValues().map((value) => String(value)));
  }
  for (const inner of component.getAllSubcomponents()) readAll(inner);
}

const calendar = guarded("parse", () => new ICAL.Component(ICAL.parse(Buffer.concat(chunks).toString("utf8"))));
if (calendar) {
  readAll(calendar);
  for (const vtodo of calendar.getAllSubcomponents("vtodo")) {
    const uid = vtodo.getFirstPropertyValue("uid");
    const todo = {
      summary: vtodo.getFirstPropertyValue("summary"),
      description: vtodo.getFirstPropertyValue("description"),
      categories: vtodo.getAllProperties("categories").flatMap((property) => property.getValues()),
      related_to: vtodo.getFirstPropertyValue("related-to"),
      due: null,
      alarms: [],
      occurrences: null,
    };
    guarded(`${uid} due`, () => {
      const due = vtodo.getFirstPropertyValue("due");
      todo.due = due ? moment(due) : null;
    });
    for (const alarm of vtodo.getAllSubcomponents("valarm")) {
      guarded(`${uid} alarm`, () => todo.alarms.push(moment(alarm.getFirstPropertyValue("trigger"))));
    }
    const rule = vtodo.getFirstPropertyValue("rrule");
    if (rule) {
      guarded(`${uid} occurrences`, () => {
        const iterator = rule.iterator(vtodo.getFirstPropertyValue("dtstart"));
        todo.occurrences = [];
        for (let next = iterator.next(); next && todo.occurrences.length < OCCURRENCES; next = iterator.next()) {
          todo.occurrences.push(moment(next));
        }
      });
    }
    todos[uid] = todo;
  }
}
process.stdout.write(JSON.stringify({ errors, todos }));
