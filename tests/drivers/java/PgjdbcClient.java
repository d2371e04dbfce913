// PgjdbcClient: the driver matrix's pgjdbc client (Debian's
// /usr/share/java/postgresql.jar), speaking tests/drivers' contract:
//   PgjdbcClient connect|big|cancel key=value ...
// tests/drivers/client-pgjdbc compiles it once and runs it.

import java.lang.reflect.Field;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import javax.net.ssl.HostnameVerifier;
import javax.net.ssl.SSLSession;
import javax.net.ssl.SSLSocket;

import org.postgresql.core.PGStream;
import org.postgresql.core.QueryExecutor;
import org.postgresql.core.QueryExecutorBase;
import org.postgresql.jdbc.PgConnection;
import org.postgresql.ssl.PGjdbcHostnameVerifier;

public final class PgjdbcClient {
    private static final int CONNECT_TIMEOUT_S = 10;
    private static final long OVERALL_TIMEOUT_MS = 60_000;
    private static final long CANCEL_AFTER_MS = 1_000;
    private static final long CANCEL_WITHIN_MS = 10_000;
    private static final String QUERY_CANCELED = "57014";
    private static final int FETCH_ROWS = 10_000;
    private static final Set<String> SSLMODES =
        Set.of("disable", "allow", "prefer", "require", "verify-ca", "verify-full");

    /** The contract's answer other than OK: a line, an exit status. */
    private static final class Outcome extends Exception {
        final int status;

        Outcome(String line, int status) {
            super(line);
            this.status = status;
        }
    }

    private PgjdbcClient() {
    }

    private static String oneLine(String s) {
        return s == null ? "" : s.replaceAll("[\\r\\n]+", " ").trim();
    }

    private static void finish(String line, int status) {
        System.out.println(oneLine(line));
        System.out.flush();
        Runtime.getRuntime().halt(status);
    }

    private static Outcome unsupported(String why) {
        return new Outcome("UNSUPPORTED " + why, 3);
    }

    private static Outcome error(String state, String message) {
        return new Outcome("ERROR sqlstate=" + (state == null || state.isEmpty() ? "none" : state)
            + " " + message, 1);
    }

    /**
     * libpq's hostaddr: pgjdbc connects to the address in its URL and checks
     * the certificate against that same string.  With hostaddr the URL gets
     * the address and this verifier (named in sslhostnameverifier, which
     * pgjdbc instantiates itself) checks the name in host instead.
     */
    public static final class HostVerifier implements HostnameVerifier {
        static volatile String host;

        @Override
        public boolean verify(String ignored, SSLSession session) {
            return PGjdbcHostnameVerifier.INSTANCE.verify(host, session);
        }
    }

    private static Map<String, String> parseArgs(String[] args) throws Outcome {
        Map<String, String> opts = new HashMap<>();
        for (int i = 1; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            if (eq <= 0) {
                throw error(null, "bad argument (want key=value): " + args[i]);
            }
            opts.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        return opts;
    }

    private static Properties connectProperties(Map<String, String> o) throws Outcome {
        String mode = o.getOrDefault("sslmode", "prefer");
        if (!SSLMODES.contains(mode)) {
            throw error(null, "invalid sslmode value: \"" + mode + "\"");
        }
        // pgjdbc 42.5.5 has neither a CRL setting nor channel binding (its
        // SCRAM client is built with ChannelBinding.NO).
        if (o.containsKey("sslcrl")) {
            throw unsupported("pgjdbc has no sslcrl (no certificate revocation lists)");
        }
        String cb = o.getOrDefault("channel_binding", "prefer");
        if (cb.equals("require")) {
            throw unsupported("pgjdbc 42.5.5 has no channel binding (SCRAM-SHA-256 only)");
        }
        if (!cb.equals("prefer") && !cb.equals("disable")) {
            throw error(null, "invalid channel_binding value: \"" + cb + "\"");
        }
        Properties p = new Properties();
        put(p, "user", o.get("user"));
        put(p, "password", o.get("password"));
        p.setProperty("sslmode", mode);
        put(p, "sslrootcert", o.get("sslrootcert"));
        // Without sslcert/sslkey pgjdbc looks in ~/.postgresql, as libpq does.
        put(p, "sslcert", o.get("sslcert"));
        put(p, "sslkey", o.get("sslkey"));	// PKCS#8 DER: client-pgjdbc converts
        p.setProperty("connectTimeout", Integer.toString(CONNECT_TIMEOUT_S));
        p.setProperty("loginTimeout", Integer.toString(CONNECT_TIMEOUT_S));
        p.setProperty("sslResponseTimeout", Integer.toString(CONNECT_TIMEOUT_S * 1000));
        p.setProperty("ApplicationName", "pgsslgate driver matrix (pgjdbc)");
        if (o.containsKey("hostaddr") && o.containsKey("host")) {
            HostVerifier.host = o.get("host");
            p.setProperty("sslhostnameverifier", HostVerifier.class.getName());
        }
        return p;
    }

    private static void put(Properties p, String key, String value) {
        if (value != null) {
            p.setProperty(key, value);
        }
    }

    private static String url(Map<String, String> o) {
        String host = o.getOrDefault("hostaddr", o.getOrDefault("host", "localhost"));
        if (host.indexOf(':') >= 0) {
            host = "[" + host + "]";
        }
        String db = o.getOrDefault("dbname", o.getOrDefault("user", ""));
        return "jdbc:postgresql://" + host + ":" + o.getOrDefault("port", "5432") + "/"
            + java.net.URLEncoder.encode(db, StandardCharsets.UTF_8);
    }

    /**
     * Whether THIS client's socket is TLS.  pgjdbc has no public call for it
     * (pg_stat_ssl would describe the gate's leg to the backend), so ask the
     * socket itself: PgConnection's query executor keeps the PGStream it
     * talks over (QueryExecutorBase.pgStream, protected), and PGStream's
     * socket is an SSLSocket exactly when pgjdbc switched to TLS.
     */
    private static String sslState(Connection conn) throws Exception {
        QueryExecutor qe = conn.unwrap(PgConnection.class).getQueryExecutor();
        Field f = QueryExecutorBase.class.getDeclaredField("pgStream");
        f.setAccessible(true);
        Socket s = ((PGStream) f.get(qe)).getSocket();
        if (s instanceof SSLSocket) {
            SSLSession session = ((SSLSocket) s).getSession();
            return session != null && session.isValid() ? "on" : "broken";
        }
        return "off";
    }

    private static String connect(Connection conn) throws Exception {
        try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT 1")) {
            if (!rs.next() || rs.getInt(1) != 1) {
                throw error(null, "SELECT 1 did not return 1");
            }
        }
        return "OK ssl=" + sslState(conn);
    }

    private static String big(Connection conn, Map<String, String> o) throws Exception {
        long rows;
        try {
            rows = Long.parseLong(o.getOrDefault("rows", "0"));
        } catch (NumberFormatException e) {
            throw error(null, "bad rows=" + o.get("rows"));
        }
        // A cursor (autocommit off, a fetch size): rows come in batches
        // rather than all into memory at once.
        conn.setAutoCommit(false);
        MessageDigest md5 = MessageDigest.getInstance("MD5");
        long n = 0;
        long bytes = 0;
        try (Statement st = conn.createStatement()) {
            st.setFetchSize(FETCH_ROWS);
            try (ResultSet rs = st.executeQuery(
                    "SELECT i, md5(i::text) FROM generate_series(1, " + rows + ") i")) {
                while (rs.next()) {
                    byte[] line = (rs.getString(1) + "," + rs.getString(2) + "\n")
                        .getBytes(StandardCharsets.UTF_8);
                    md5.update(line);
                    bytes += line.length;
                    n++;
                }
            }
        }
        conn.commit();
        StringBuilder hex = new StringBuilder();
        for (byte b : md5.digest()) {
            hex.append(String.format("%02x", b));
        }
        return "OK ssl=" + sslState(conn) + " rows=" + n + " bytes=" + bytes + " md5=" + hex;
    }

    /** pgjdbc's own cancel: Statement.cancel() sends a CancelRequest. */
    private static String cancel(Connection conn) throws Exception {
        try (Statement st = conn.createStatement()) {
            Thread canceller = new Thread(() -> {
                try {
                    Thread.sleep(CANCEL_AFTER_MS);
                    st.cancel();
                } catch (Exception e) {
                    finish("ERROR sqlstate=none Statement.cancel() failed: " + e, 1);
                }
            });
            canceller.setDaemon(true);
            Thread late = new Thread(() -> {
                try {
                    Thread.sleep(CANCEL_AFTER_MS + CANCEL_WITHIN_MS);
                    finish("ERROR sqlstate=none query not cancelled within "
                        + CANCEL_WITHIN_MS / 1000 + " s", 1);
                } catch (InterruptedException e) {
                    // cancelled in time
                }
            });
            late.setDaemon(true);
            canceller.start();
            late.start();
            try {
                st.executeQuery("SELECT pg_sleep(30)").close();
            } catch (SQLException e) {
                late.interrupt();
                if (QUERY_CANCELED.equals(e.getSQLState())) {
                    return "OK cancelled sqlstate=" + QUERY_CANCELED;
                }
                throw e;
            }
            throw error(null, "pg_sleep(30) finished without being cancelled");
        }
    }

    private static String run(String[] args) throws Exception {
        if (args.length < 1 || !Set.of("connect", "big", "cancel").contains(args[0])) {
            throw error(null, "usage: client-pgjdbc connect|big|cancel key=value ...");
        }
        Map<String, String> o = parseArgs(args);
        Properties props = connectProperties(o);
        DriverManager.setLoginTimeout(CONNECT_TIMEOUT_S);
        try (Connection conn = DriverManager.getConnection(url(o), props)) {
            switch (args[0]) {
                case "connect":
                    return connect(conn);
                case "big":
                    return big(conn, o);
                default:
                    return cancel(conn);
            }
        }
    }

    public static void main(String[] args) {
        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(OVERALL_TIMEOUT_MS);
                finish("ERROR sqlstate=none overall timeout of " + OVERALL_TIMEOUT_MS / 1000 + " s", 1);
            } catch (InterruptedException e) {
                // done in time
            }
        });
        watchdog.setDaemon(true);
        watchdog.start();
        try {
            finish(run(args), 0);
        } catch (Outcome o) {
            finish(o.getMessage(), o.status);
        } catch (SQLException e) {
            StringBuilder msg = new StringBuilder(String.valueOf(e.getMessage()));
            for (Throwable c = e.getCause(); c != null && c != c.getCause(); c = c.getCause()) {
                msg.append(" (").append(c).append(')');
            }
            finish("ERROR sqlstate=" + (e.getSQLState() == null ? "none" : e.getSQLState())
                + " " + msg, 1);
        } catch (Exception e) {
            finish("ERROR sqlstate=none " + e, 1);
        }
    }
}
