-- +goose Up
-- In-app chat and the staff console.
--
-- conversations.customer_channel is where the customer last wrote from:
-- 'wechat' (mini-program customer service, replies go out through WeChat)
-- or 'app' (the in-app chat, replies are read there and pushed over /ws).
-- staff_reads is how far each staff member has read each conversation, for
-- the console's unread counts (operational, not evidence).
ALTER TABLE conversations ADD COLUMN customer_channel TEXT NOT NULL DEFAULT 'wechat';

CREATE TABLE staff_reads (
    userid          TEXT NOT NULL,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    seq             INTEGER NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (userid, conversation_id)
);

-- +goose Down
DROP TABLE staff_reads;
ALTER TABLE conversations DROP COLUMN customer_channel;
