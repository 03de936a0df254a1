"""Twilio: SMS/MMS and voice calls on one Twilio number (or Messaging Service).

One account is one line: the customers who text it and the customers who call
it land in the same conversations, and a reply to a missed call goes out as
an SMS from the number they called.
"""
