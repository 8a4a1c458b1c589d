"""The IO shell: sockets, the event-loop engine, name resolution. Everything impure lives here."""
