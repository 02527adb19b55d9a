-- Debian's miltertest (OpenDKIM's libmilter-based MTA simulator) against the outbound-pools
-- milter: an independent implementation of the MTA side. Run by test/postfix/miltertest.test.ts
-- with MILTER=inet:PORT@127.0.0.1; the milter has a policy of at most 2 recipients per message.

local function check(ok, what)
  if not ok then error(what) end
end

local conn = mt.connect(os.getenv("MILTER"), 10, 0.2)
check(conn ~= nil, "cannot connect to " .. tostring(os.getenv("MILTER")))
check(mt.negotiate(conn, nil, nil, nil) == nil, "option negotiation failed")
check(mt.test_action(conn, SMFIF_ADDHDRS), "the milter did not ask to add headers")
check(mt.test_action(conn, SMFIF_CHGHDRS), "the milter did not ask to change headers")
check(mt.test_action(conn, SMFIF_CHGFROM), "the milter did not ask to change the sender")
check(mt.test_option(conn, SMFIP_NOBODY), "the milter asked for the body it does not need")
-- The milter does without end of header (SMFIP_NOEOH): an MTA then sends none, and miltertest
-- refuses to send it.
check(mt.test_option(conn, SMFIP_NOEOH), "the milter asked for the end of header it does not need")
check(mt.conninfo(conn, "client.contoso.com", "192.0.2.7") == nil, "conninfo")

-- 1. An accepted-domain message, with a forged pool header: normal pool, the forged one deleted.
mt.macro(conn, SMFIC_MAIL, "i", "MT0001", "{auth_authen}", "megan")
check(mt.mailfrom(conn, "megan@contoso.com") == nil, "mailfrom")
check(mt.rcptto(conn, "lee@fabrikam.example") == nil, "rcptto")
check(mt.header(conn, "X-Spam-Score", "0.5") == nil, "header")
check(mt.header(conn, "From", "megan@contoso.com") == nil, "header")
check(mt.header(conn, "X-Outbound-Pool-Route", "relay") == nil, "header")
check(mt.eom(conn) == nil, "eom")
check(mt.getreply(conn) == SMFIR_CONTINUE, "1: the end of message was not answered with CONTINUE")
check(mt.eom_check(conn, MT_HDRADD, "X-Outbound-Pool-Route", "normal"), "1: no pool header normal")
check(mt.eom_check(conn, MT_HDRDELETE, "X-Outbound-Pool-Route"), "1: the forged pool header was not deleted")
check(mt.eom_check(conn, MT_HDRADD, "X-Outbound-Pool"), "1: no trace header")
mt.echo("1: " .. mt.getheader(conn, "X-Outbound-Pool", 0))

-- 2. Spam (by the score header): the high-risk pool.
mt.macro(conn, SMFIC_MAIL, "i", "MT0002")
check(mt.mailfrom(conn, "megan@contoso.com") == nil, "mailfrom")
check(mt.rcptto(conn, "lee@fabrikam.example") == nil, "rcptto")
check(mt.header(conn, "X-Spam-Score", "12.5") == nil, "header")
check(mt.header(conn, "From", "megan@contoso.com") == nil, "header")
check(mt.eom(conn) == nil, "eom")
check(mt.getreply(conn) == SMFIR_CONTINUE, "2: the end of message was not answered with CONTINUE")
check(mt.eom_check(conn, MT_HDRADD, "X-Outbound-Pool-Route", "high-risk"), "2: no pool header high-risk")
mt.echo("2: " .. mt.getheader(conn, "X-Outbound-Pool", 0))

-- 3. Three recipients: blocked with the decision's reply.
mt.macro(conn, SMFIC_MAIL, "i", "MT0003")
check(mt.mailfrom(conn, "megan@contoso.com") == nil, "mailfrom")
check(mt.rcptto(conn, "a@fabrikam.example") == nil, "rcptto")
check(mt.rcptto(conn, "b@fabrikam.example") == nil, "rcptto")
check(mt.rcptto(conn, "c@fabrikam.example") == nil, "rcptto")
check(mt.header(conn, "X-Spam-Score", "0.5") == nil, "header")
check(mt.eom(conn) == nil, "eom")
check(mt.getreply(conn) == SMFIR_REPLYCODE, "3: the end of message was not answered with REPLYCODE")
check(mt.eom_check(conn, MT_SMTPREPLY, "550", "5.5.3", "Too many recipients: at most 2 per message"), "3: not the decision's reply")
mt.echo("3: blocked")

mt.disconnect(conn)
