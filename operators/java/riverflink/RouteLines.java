package riverflink;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.DeserializationFeature;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.JsonNodeFactory;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.types.Row;

/**
 * riverflink's router: raw input lines in, (routing bucket, lines of that bucket) out.
 *
 * <p>The lines of a bucket leave as one byte array: the lines' own bytes (each line arrives as
 * ISO-8859-1 characters, one per byte of the input), joined by newlines. Flink copies a byte
 * array between tasks and into Python in one piece, where an array of strings goes character by
 * character, twice. Empty lines are dropped (the learner skips them anyway), so an empty array
 * is never a batch of lines: it is the checkpoint marker.
 *
 * <p>The bucket of a line comes from its key field's text (what Flink SQL's {@code JSON_VALUE}
 * gives, or the empty string). With {@code spreadKeys} (riverflink's {@code spread} routing, see
 * {@code state/descriptors.py}) Java's hash of the text, mixed by MurmurHash3's finalizer, picks
 * one of them, a Flink key per key group; {@code operators.records.spread_bucket} is the same
 * function in Python. Without ({@code hash} routing, for state written before the spread), the
 * bucket is the hash as Flink SQL's {@code HASH_CODE} gives it, modulo the number of buckets, as
 * {@code operators.records.route_bucket}. The learner checks every key against its routing. Lines are gathered per bucket and sent on when a bucket holds
 * {@code batchLines} lines, every {@code batchMillis} milliseconds, before every checkpoint
 * barrier and at the end of the input; when it holds {@code maxHeld} lines in all, the fullest
 * bucket's go. With {@code markers}, it also sends every bucket an empty list right before
 * each checkpoint barrier (see {@code operators.functions.LearnPerKey}). The operator keeps no state: a checkpoint finds every
 * line it read already sent on, ahead of the barrier.
 *
 * <p>With {@code textLines} (a program's own stream, {@code riverflink.learn}), lines arrive as
 * text, not as raw bytes: each is encoded as UTF-8 first, so the learner and the buckets see
 * exactly what they would see had the same line been read from a file.
 */
public class RouteLines extends AbstractStreamOperator<Row>
        implements OneInputStreamOperator<String, Row>, BoundedOneInput {

    private static final long serialVersionUID = 1L;
    // Numbers are read exactly as written (100.0 stays 100.0, 1e2 becomes 1E+2), as JSON_VALUE.
    private static final ObjectMapper JSON =
            new ObjectMapper()
                    .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
                    .setNodeFactory(JsonNodeFactory.withExactBigDecimals(true));

    private final String keyField;
    private final int buckets;
    private final int batchLines;
    private final long batchMillis;
    private final int maxHeld;
    private final boolean markers;
    private final int[] spreadKeys;
    private final boolean textLines;
    private final char[] quotedField;

    private transient List<String>[] pending;
    private transient int waiting;

    public RouteLines(
            String keyField,
            int buckets,
            int batchLines,
            long batchMillis,
            int maxHeld,
            boolean markers,
            int[] spreadKeys,
            boolean textLines) {
        if (spreadKeys.length > 0 && (spreadKeys.length != buckets || Integer.bitCount(buckets) != 1)) {
            throw new IllegalArgumentException("spreadKeys needs one key per bucket, a power of 2");
        }
        this.keyField = keyField;
        this.buckets = buckets;
        this.spreadKeys = spreadKeys.length > 0 ? spreadKeys : null;
        this.batchLines = Math.max(1, batchLines);
        this.batchMillis = batchMillis;
        this.maxHeld = Math.max(1, maxHeld);
        this.markers = markers;
        this.textLines = textLines;
        this.quotedField = ('"' + keyField + '"').toCharArray();
    }

    @Override
    @SuppressWarnings("unchecked")
    public void open() throws Exception {
        super.open();
        pending = new List[buckets];
        if (batchLines > 1 && batchMillis > 0) {
            getProcessingTimeService().scheduleWithFixedDelay(t -> flushAll(), batchMillis, batchMillis);
        }
    }

    @Override
    public void processElement(StreamRecord<String> element) throws Exception {
        String line = element.getValue();
        if (line.isEmpty()) {
            return;
        }
        if (textLines) {
            line = rawBytes(line);
        }
        int bucket = indexOf(keyText(line, keyField, quotedField));
        if (batchLines == 1) {
            output.collect(new StreamRecord<>(Row.of(key(bucket), joined(List.of(line)))));
            return;
        }
        List<String> lines = pending[bucket];
        if (lines == null) {
            lines = pending[bucket] = new ArrayList<>();
        }
        lines.add(line);
        waiting++;
        if (lines.size() >= batchLines) {
            send(bucket);
        } else if (waiting >= maxHeld) {
            sendFullest();
        }
    }

    /**
     * Bounded read-ahead: lines held here reach Python only after the lines already sent,
     * and a checkpoint barrier only after both, so the router holds at most maxHeld lines.
     */
    private void sendFullest() {
        int fullest = 0;
        for (int bucket = 1; bucket < buckets; bucket++) {
            if (size(bucket) > size(fullest)) {
                fullest = bucket;
            }
        }
        send(fullest);
    }

    private int size(int bucket) {
        return pending[bucket] == null ? 0 : pending[bucket].size();
    }

    private void send(int bucket) {
        List<String> lines = pending[bucket];
        waiting -= lines.size();
        output.collect(new StreamRecord<>(Row.of(key(bucket), joined(lines))));
        lines.clear();
    }

    /** A line of text as its UTF-8 bytes, one ISO-8859-1 character each (ASCII: itself). */
    static String rawBytes(String text) {
        for (int i = 0; i < text.length(); i++) {
            if (text.charAt(i) >= 0x80) {
                return new String(text.getBytes(StandardCharsets.UTF_8), StandardCharsets.ISO_8859_1);
            }
        }
        return text;
    }

    /** The lines' bytes (ISO-8859-1: one byte per character), joined by newlines. */
    @SuppressWarnings("deprecation") // String.getBytes(int, int, byte[], int): exactly ISO-8859-1
    static byte[] joined(List<String> lines) {
        int size = lines.size() - 1;
        for (String line : lines) {
            size += line.length();
        }
        byte[] out = new byte[size];
        int at = 0;
        for (String line : lines) {
            if (at > 0) {
                out[at++] = '\n';
            }
            line.getBytes(0, line.length(), out, at);
            at += line.length();
        }
        return out;
    }

    private void flushAll() {
        if (waiting == 0) {
            return;
        }
        for (int bucket = 0; bucket < buckets; bucket++) {
            if (pending[bucket] != null && !pending[bucket].isEmpty()) {
                send(bucket);
            }
        }
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        flushAll();
        if (markers) {
            // A checkpoint marker per bucket, an empty list of lines, right ahead of the
            // barrier: the learner writes the bucket's changed models to Flink state then.
            for (int bucket = 0; bucket < buckets; bucket++) {
                output.collect(new StreamRecord<>(Row.of(key(bucket), new byte[0])));
            }
        }
        super.prepareSnapshotPreBarrier(checkpointId);
    }

    @Override
    public void endInput() throws Exception {
        flushAll();
    }

    @Override
    public void finish() throws Exception {
        flushAll();
        super.finish();
    }

    /** This router's bucket index (0 to buckets - 1) of a key text. */
    private int indexOf(String text) {
        return spreadKeys != null ? spreadIndex(text, buckets) : Math.abs(text.hashCode()) % buckets;
    }

    /** The Flink key of bucket index i. */
    private int key(int i) {
        return spreadKeys != null ? spreadKeys[i] : i;
    }

    /** The bucket of one raw line (bytes as ISO-8859-1 characters), hash routing. */
    public static int bucketOf(String line, String keyField, int buckets) {
        return Math.abs(keyText(line, keyField).hashCode()) % buckets;
    }

    /** The bucket of one raw line (bytes as ISO-8859-1 characters), spread routing. */
    public static int spreadBucketOf(String line, String keyField, int[] spreadKeys) {
        return spreadKeys[spreadIndex(keyText(line, keyField), spreadKeys.length)];
    }

    /** Java's hash of the key text, mixed by MurmurHash3's 32-bit finalizer, modulo buckets. */
    static int spreadIndex(String text, int buckets) {
        int h = text.hashCode();
        h ^= h >>> 16;
        h *= 0x85ebca6b;
        h ^= h >>> 13;
        h *= 0xc2b2ae35;
        h ^= h >>> 16;
        return h & (buckets - 1);
    }

    /** The key field's text, as JSON_VALUE gives it; "" for none. */
    public static String keyText(String line, String keyField) {
        return keyText(line, keyField, ('"' + keyField + '"').toCharArray());
    }

    private static String keyText(String line, String keyField, char[] quotedField) {
        String fast = leadingPlainString(line, quotedField);
        return fast != null ? fast : parsedKeyText(line, keyField);
    }

    private static boolean isSpace(char c) {
        // Java regex \s: the whitespace the SQL router's fast path allowed.
        return c == ' ' || c == '\t' || c == '\n' || c == 0x0B || c == '\f' || c == '\r';
    }

    /**
     * The key of a line that starts {@code {"<field>": "<plain ASCII>"} followed by , or }: the
     * common case, cut out without parsing. Null for any other line.
     */
    private static String leadingPlainString(String line, char[] quotedField) {
        int n = line.length();
        int i = 0;
        while (i < n && isSpace(line.charAt(i))) i++;
        if (i >= n || line.charAt(i) != '{') return null;
        i++;
        while (i < n && isSpace(line.charAt(i))) i++;
        if (!line.startsWith(new String(quotedField), i)) return null;
        i += quotedField.length;
        while (i < n && isSpace(line.charAt(i))) i++;
        if (i >= n || line.charAt(i) != ':') return null;
        i++;
        while (i < n && isSpace(line.charAt(i))) i++;
        if (i >= n || line.charAt(i) != '"') return null;
        int start = ++i;
        while (i < n) {
            char c = line.charAt(i);
            if (c == '"') break;
            if (c < 0x20 || c > 0x7e || c == '\\') return null;
            i++;
        }
        if (i >= n) return null;
        int end = i++;
        while (i < n && isSpace(line.charAt(i))) i++;
        if (i >= n || (line.charAt(i) != ',' && line.charAt(i) != '}')) return null;
        return line.substring(start, end);
    }

    private static String parsedKeyText(String line, String keyField) {
        String text = new String(line.getBytes(StandardCharsets.ISO_8859_1), StandardCharsets.UTF_8);
        if (text.startsWith("\uFEFF")) text = text.substring(1);
        JsonNode value;
        try {
            JsonNode root = JSON.readTree(text);
            value = root == null || !root.isObject() ? null : root.get(keyField);
        } catch (Exception e) {
            return "";
        }
        if (value == null) return "";
        if (value.isTextual()) return value.textValue();
        if (value.isBoolean()) return value.booleanValue() ? "true" : "false";
        if (value.isIntegralNumber()) return value.bigIntegerValue().toString();
        if (value.isNumber()) return value.decimalValue().toString();
        return "";
    }
}
