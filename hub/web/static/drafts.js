// Unsent replies and notes, one per conversation, kept in this browser
// (localStorage) as they are typed: switching conversations, a reload or a
// crashed tab never loses them, and what was written for one customer never
// follows the agent into another customer's conversation.
//
// A draft also remembers the newest message of the conversation when it was
// begun (`since`, the hub's own timestamp): a colleague's reply sent after it is
// one the agent has not read before writing theirs.

const PREFIX = 'hub.draft.';

function key(agentId, conversationId) { return `${PREFIX}${agentId}.${conversationId}`; }

export function loadDraft(agentId, conversationId) {
  try {
    const draft = JSON.parse(localStorage.getItem(key(agentId, conversationId)) || 'null');
    return draft && typeof draft.text === 'string' ? draft : null;
  } catch {
    return null;
  }
}

export function saveDraft(agentId, conversationId, draft) {
  try {
    if (draft && draft.text) localStorage.setItem(key(agentId, conversationId), JSON.stringify(draft));
    else localStorage.removeItem(key(agentId, conversationId));
  } catch {
    // Storage full or refused (private mode): the box still holds the text.
  }
}
