-- +goose Up
-- The link audit is evidence of who linked what: the database itself refuses
-- to change or delete a line, whatever the code does.
-- +goose StatementBegin
CREATE FUNCTION link_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'link_audit is append-only';
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
CREATE TRIGGER link_audit_no_change BEFORE UPDATE OR DELETE ON link_audit
    FOR EACH ROW EXECUTE FUNCTION link_audit_append_only();

-- +goose Down
DROP TRIGGER link_audit_no_change ON link_audit;
DROP FUNCTION link_audit_append_only();
