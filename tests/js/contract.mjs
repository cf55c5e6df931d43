// Checks what a Socket.IO client received against the AsyncAPI document the server
// serves (/asyncapi.json): every event must be documented as sent by the server, and
// its payload must validate against the documented schema.
import Ajv from "ajv";
import addFormats from "ajv-formats";

export async function loadContract(base) {
  const res = await fetch(base + "/asyncapi.json", { signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Error(`/asyncapi.json answered ${res.status}`);
  const doc = await res.json();
  const ajv = new Ajv({ strict: true, allowUnionTypes: true, allErrors: true });
  addFormats(ajv);
  ajv.addVocabulary(["components"]);
  // The schemas refer to each other as #/components/schemas/<name>: register the whole
  // document under one id so those references resolve.
  ajv.addSchema({ $id: "asyncapi", components: { schemas: doc.components.schemas } });
  const resolve = (ref) => ref.replace(/^#\//, "").split("/").reduce((at, k) => at[k], doc);
  const validators = new Map();
  for (const [name, op] of Object.entries(doc.operations)) {
    const message = resolve(resolve(op.messages[0].$ref).$ref);
    const ref = message.payload.$ref.replace(/^#/, "asyncapi#");
    validators.set(name, { action: op.action, validate: ajv.getSchema(ref) });
    if (op.reply) {
      const reply = resolve(resolve(op.reply.messages[0].$ref).$ref);
      validators.set(`${name}:reply`, { action: "reply", validate: ajv.getSchema(reply.payload.$ref.replace(/^#/, "asyncapi#")) });
    }
  }
  const check = (key, payload, where) => {
    const entry = validators.get(key);
    if (!entry) throw new Error(`${where}: "${key}" is not in the AsyncAPI document`);
    if (!entry.validate(payload)) {
      throw new Error(`${where}: ${key} payload ${JSON.stringify(payload)} does not match the document: ` +
        JSON.stringify(entry.validate.errors));
    }
    return entry;
  };
  return {
    // Every event `socket` recorded (as {event, payload}) is a documented server event.
    events(socket) {
      for (const { event, payload } of socket.events) {
        const entry = check(event, payload, socket.named);
        if (entry.action !== "send") throw new Error(`${socket.named} received "${event}", a client-to-server event`);
      }
      return socket.events.length;
    },
    // An acknowledgement the server sent for `event`.
    reply(event, payload) {
      check(`${event}:reply`, payload, `${event} acknowledgement`);
    },
  };
}
