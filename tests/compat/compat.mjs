// Drives the official Azure Web PubSub SDKs against the emulator and prints one JSON object of results.
// Env: WPS_CONNECTION_STRING (required), WPS_HUB (default "compat").
import { WebPubSubServiceClient } from "@azure/web-pubsub";
import { WebPubSubClient } from "@azure/web-pubsub-client";

const hub = process.env.WPS_HUB || "compat";
const results = {};
const watchdog = setTimeout(() => finish(new Error("compat script timed out")), 60_000);

function finish(err) {
  clearTimeout(watchdog);
  if (err) {
    results.error = String((err && err.stack) || err);
  }
  process.stdout.write(JSON.stringify(results) + "\n");
  process.exit(err ? 1 : 0);
}

// normalize turns a received message into {kind, group?, dataType, data} with binary data as base64.
function normalize(kind, message) {
  let data = message.data;
  if (message.dataType === "binary") {
    data = Buffer.from(data).toString("base64");
  }
  const out = { kind, dataType: message.dataType, data };
  if (message.group) out.group = message.group;
  if (message.fromUserId) out.fromUserId = message.fromUserId;
  return out;
}

async function waitFor(what, cond, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function main() {
  const service = new WebPubSubServiceClient(process.env.WPS_CONNECTION_STRING, hub, {
    allowInsecureConnection: true,
  });

  // Client SDK: connect with a URL from getClientAccessToken (reliable JSON subprotocol by default).
  const token = await service.getClientAccessToken({
    userId: "alice",
    roles: ["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"],
    groups: ["auto"],
  });
  results.clientUrlPath = new URL(token.url).pathname;
  const client = new WebPubSubClient(token.url, { autoReconnect: false });
  const received = [];
  let disconnected = null;
  client.on("group-message", (e) => received.push(normalize("group", e.message)));
  client.on("server-message", (e) => received.push(normalize("server", e.message)));
  // e.message is the "disconnected" system message the service sent before closing, if any.
  client.on("disconnected", (e) => { disconnected = (e.message && e.message.message) || ""; });
  let connectionId = null;
  let connectedEvents = 0;
  client.on("connected", (e) => {
    connectedEvents++;
    connectionId = e.connectionId;
    results.connectedUserId = e.userId;
  });
  await client.start();
  await waitFor("connected", () => connectionId !== null);
  results.connected = true;

  await client.joinGroup("room");
  results.joinedGroup = true;
  results.autoGroupExists = await service.groupExists("auto");

  // Service SDK sends of each data type to all / group / user / connection.
  await service.sendToAll({ hello: "all" });
  await service.sendToAll("text to all", { contentType: "text/plain" });
  await service.group("room").sendToAll({ g: 1 });
  await service.group("room").sendToAll("group text", { contentType: "text/plain" });
  await service.group("room").sendToAll(Buffer.from([1, 2, 3]));
  await service.sendToUser("alice", { u: 1 });
  await service.sendToConnection(connectionId, "conn text", { contentType: "text/plain" });
  await service.sendToAll({ filtered: true }, { filter: "userId eq 'nobody'" });
  await waitFor("7 server messages", () => received.length >= 7);

  // Client SDK sends to a group (echoed back, since noEcho defaults to false).
  await client.sendToGroup("room", "from client", "text");
  await client.sendToGroup("room", { c: 1 }, "json");
  await client.sendToGroup("room", Uint8Array.from([9, 8]).buffer, "binary");
  await client.sendToGroup("room", "not echoed", "text", { noEcho: true });
  await waitFor("3 echoed group messages", () => received.length >= 10);

  // Recovery: drop the socket without a close frame (a network failure). The client reconnects with
  // awps_connection_id and awps_reconnection_token, keeps its connection id, and gets what was sent meanwhile.
  client._wsClient._socket.terminate();
  await service.sendToConnection(connectionId, "after drop", { contentType: "text/plain" });
  await waitFor("the message sent across the drop", () => received.length >= 11);
  results.recoveredConnectionId = client._connectionId === connectionId;
  results.disconnectedDuringRecovery = disconnected !== null;
  results.connectedEvents = connectedEvents;
  results.received = received.slice();

  // Existence checks.
  results.groupExists = await service.groupExists("room");
  results.missingGroupExists = await service.groupExists("nobody-here");
  results.userExists = await service.userExists("alice");
  results.missingUserExists = await service.userExists("bob");
  results.connectionExists = await service.connectionExists(connectionId);

  // Group management.
  await service.group("extra").addConnection(connectionId);
  results.extraAfterAdd = await service.groupExists("extra");
  const members = [];
  // listConnections resolves (inside a tracing span) to a paged async iterator.
  for await (const m of await service.group("extra").listConnections()) members.push(m);
  results.extraMembers = members.map((m) => m.connectionId === connectionId && m.userId);
  await service.group("extra").removeConnection(connectionId);
  results.extraAfterRemove = await service.groupExists("extra");
  await service.group("ug").addUser("alice");
  results.userGroupAfterAdd = await service.groupExists("ug");
  await service.group("ug").removeUser("alice");
  results.userGroupAfterRemove = await service.groupExists("ug");
  await service.addConnectionsToGroups(["bulk"], "userId eq 'alice'");
  results.bulkAfterAdd = await service.groupExists("bulk");
  await service.removeConnectionsFromGroups(["bulk"], "userId eq 'alice'");
  results.bulkAfterRemove = await service.groupExists("bulk");
  await service.removeUserFromAllGroups("alice");
  results.roomAfterRemoveAll = await service.groupExists("room");

  // Permissions.
  await service.grantPermission(connectionId, "sendToGroup", { targetName: "perm" });
  results.hasPermissionAfterGrant = await service.hasPermission(connectionId, "sendToGroup", { targetName: "perm" });
  await service.revokePermission(connectionId, "joinLeaveGroup");
  results.hasJoinAfterRevoke = await service.hasPermission(connectionId, "joinLeaveGroup", { targetName: "x" });

  // Closing.
  await service.closeConnection(connectionId, { reason: "compat done" });
  results.connectionExistsAfterClose = await service.connectionExists(connectionId);
  await waitFor("disconnected event", () => disconnected !== null);
  results.disconnectedMessage = disconnected;
  await service.closeAllConnections({ reason: "all" });
  await service.closeUserConnections("nobody");
  await service.group("room").closeAllConnections();
  results.closeOpsOk = true;
  client.stop();
}

main().then(() => finish(), finish);
