// Renders /asyncapi.json without any library: the operations by direction, each with
// its payload schema, then the shared schemas. Text only (textContent), no HTML from
// the document is interpreted.
"use strict";

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function resolve(doc, ref) {
  return ref.replace(/^#\//, "").split("/").reduce((at, key) => at && at[key], doc);
}

function schemaName(payload) {
  return payload && payload.$ref ? payload.$ref.split("/").pop() : JSON.stringify(payload);
}

function operation(doc, name, op) {
  const box = el("article");
  box.append(el("h3", name));
  box.append(el("p", op.summary || ""));
  for (const ref of op.messages || []) {
    const message = resolve(doc, resolve(doc, ref.$ref).$ref);
    box.append(el("p", "payload: " + schemaName(message.payload)));
  }
  if (op.reply) {
    for (const ref of op.reply.messages || []) {
      const message = resolve(doc, resolve(doc, ref.$ref).$ref);
      box.append(el("p", "acknowledgement: " + schemaName(message.payload), "reply"));
    }
  }
  return box;
}

fetch("/asyncapi.json")
  .then((r) => r.json())
  .then((doc) => {
    document.getElementById("title").textContent = doc.info.title + " " + doc.info.version;
    for (const para of doc.info.description.split("\n\n")) {
      document.getElementById("about").append(el("p", para.replace(/\*\*|`/g, "")));
    }
    for (const [name, op] of Object.entries(doc.operations)) {
      document.getElementById(op.action).append(operation(doc, name, op));
    }
    for (const [name, schema] of Object.entries(doc.components.schemas)) {
      const box = el("article");
      box.append(el("h3", name));
      box.append(el("pre", JSON.stringify(schema, null, 2)));
      document.getElementById("schemas").append(box);
    }
  })
  .catch((e) => document.body.append(el("p", "Could not load /asyncapi.json: " + e)));
