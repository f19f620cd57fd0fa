-- +goose Up
-- The link audit is evidence of who linked what: the database itself refuses
-- to change or delete a line, whatever the code does.
-- +goose StatementBegin
CREATE TRIGGER link_audit_no_update BEFORE UPDATE ON link_audit
BEGIN
    SELECT RAISE(ABORT, 'link_audit is append-only');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER link_audit_no_delete BEFORE DELETE ON link_audit
BEGIN
    SELECT RAISE(ABORT, 'link_audit is append-only');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER link_audit_no_delete;
DROP TRIGGER link_audit_no_update;
