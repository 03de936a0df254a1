"""Asterisk: an IP PBX seen through the Asterisk Manager Interface (AMI).

`protocol` reads and writes AMI's wire format, `client` keeps a logged-in
connection alive, `assembler` turns the event stream into call records, and
`channel` wires them to the inbox and places click-to-call calls.
"""
