/*
 * notify.h - systemd's notification protocol, without libsystemd
 *
 * Under a Type=notify unit, systemd sets NOTIFY_SOCKET and waits for
 * READY=1; RELOADING=1, STOPPING=1 and STATUS= lines keep `systemctl
 * status` truthful.  Outside systemd every call does nothing.
 */
#ifndef AIOSMTPD_NOTIFY_H
#define AIOSMTPD_NOTIFY_H

/* notify_init - read and clear NOTIFY_SOCKET; call once, in the master */
void notify_init(void);
/* notify_send - send one datagram of "KEY=value" lines */
void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
