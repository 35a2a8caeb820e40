package riverflink;

import java.io.IOException;
import java.io.InputStreamReader;
import java.io.Reader;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

import org.apache.flink.streaming.api.functions.source.legacy.SourceFunction;

/**
 * Lines read from a TCP server, with reconnects: riverflink's socket source.
 *
 * <p>Flink's own {@code socketTextStream} keeps an unterminated last line in its buffer
 * across a reconnect, so it was glued to the first line of the next connection and both
 * were rejected as one invalid line. Here each connection's last line ends with the
 * connection. Otherwise it behaves like Flink's: lines end at {@code \n} (a {@code \r}
 * before it is dropped), a connection that cannot be made fails the job, and after the
 * peer closes, it connects again, 500 ms apart, until it has made {@code connections}
 * connections. Bytes pass as ISO-8859-1 characters, one per byte:
 * the Python side decodes UTF-8 itself and rejects what is not.
 */
public final class SocketLines implements SourceFunction<String> {
    private static final long serialVersionUID = 1L;
    private static final long RECONNECT_DELAY_MS = 500;

    private final String host;
    private final int port;
    private final long connections;

    private transient volatile boolean running;
    private transient volatile Socket current;

    public SocketLines(String host, int port, long connections) {
        this.host = host;
        this.port = port;
        this.connections = connections;
    }

    @Override
    public void run(SourceContext<String> ctx) throws Exception {
        running = true;
        long made = 0;
        StringBuilder line = new StringBuilder();
        char[] chunk = new char[8192];
        while (running) {
            try (Socket socket = new Socket()) {
                current = socket;
                socket.connect(new InetSocketAddress(host, port), 0);
                made++;
                Reader in = new InputStreamReader(socket.getInputStream(), StandardCharsets.ISO_8859_1);
                int read;
                while (running && (read = in.read(chunk)) != -1) {
                    int start = 0;
                    for (int i = 0; i < read; i++) {
                        if (chunk[i] == '\n') {
                            line.append(chunk, start, i - start);
                            emit(ctx, line);
                            start = i + 1;
                        }
                    }
                    line.append(chunk, start, read - start);
                }
            } catch (IOException e) {
                if (!running) {
                    break; // cancelled: closing the socket ended the read
                }
                throw e;
            } finally {
                current = null;
            }
            if (line.length() > 0) {
                emit(ctx, line); // the connection's last line, without a line break
            }
            if (!running || made >= connections) {
                break;
            }
            Thread.sleep(RECONNECT_DELAY_MS);
        }
    }

    private static void emit(SourceContext<String> ctx, StringBuilder line) {
        int end = line.length();
        if (end > 0 && line.charAt(end - 1) == '\r') {
            end--;
        }
        String text = line.substring(0, end);
        line.setLength(0);
        synchronized (ctx.getCheckpointLock()) {
            ctx.collect(text);
        }
    }

    @Override
    public void cancel() {
        running = false;
        Socket socket = current;
        if (socket != null) {
            try {
                socket.close();
            } catch (IOException ignored) {
                // closing is all that is wanted
            }
        }
    }
}
