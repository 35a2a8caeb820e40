package riverflink;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.instrument.ClassDefinition;
import java.lang.instrument.ClassFileTransformer;
import java.lang.instrument.Instrumentation;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.ProtectionDomain;

/**
 * A Java agent for the local JVM: the Python workers' gRPC services listen on localhost only.
 *
 * <p>Flink's Python operators start Beam's services (control, data, state, logging,
 * provisioning) on free ports for their workers, and tell the workers to connect to
 * {@code localhost}. Flink's copy of Beam's {@code ServerFactory} builds each server with
 * {@code NettyServerBuilder.forPort(port)}, which listens on every network interface, where
 * the loopback address it chose is dropped. Anyone who can reach the machine could then
 * talk to a running job's state service. This agent changes that one call, once, before any
 * server exists: {@code forPort(address.getPort())} becomes {@code forAddress(address)}, the
 * loopback address Beam meant.
 *
 * <p>It changes nothing else, and nothing at all where the class is not as expected (another
 * Flink version): the system property {@code riverflink.grpc.loopback} then says so, and
 * riverflink warns. Local runs load it ({@code jobs/accel/jvm_archive.py}), where Flink's Python
 * classes are on the JVM's class path: the class is redefined once, at start. TaskManagers
 * of {@code riverflink cluster} load it with the argument {@code transform}: there the class
 * comes with each job, in the job's own class loader, and is changed as it is loaded. (A
 * transformer would also see every class of the local JVM's class-data archive, which Java
 * then reads from the jars again, so local runs do without one.)
 */
public final class LoopbackAgent {
    static final String TARGET =
            "org.apache.beam.sdk.fn.server.ServerFactory$InetSocketAddressServerFactory";
    static final String PROPERTY = "riverflink.grpc.loopback";

    private static final int INVOKEVIRTUAL = 0xb6;
    private static final int INVOKESTATIC = 0xb8;

    private LoopbackAgent() {}

    public static void premain(String args, Instrumentation instrumentation) {
        if ("transform".equals(args)) {
            instrumentation.addTransformer(new Transformer());
            return;
        }
        String outcome;
        try {
            outcome = patch(instrumentation);
        } catch (Throwable e) { // never stop the JVM: without the patch Flink still works
            outcome = "failed: " + e;
        }
        System.setProperty(PROPERTY, outcome);
    }

    /** Changes the class as any class loader defines it (a TaskManager's jobs). */
    static final class Transformer implements ClassFileTransformer {
        private static final String NAME = TARGET.replace('.', '/');

        @Override
        public byte[] transform(
                ClassLoader loader,
                String className,
                Class<?> redefined,
                ProtectionDomain domain,
                byte[] bytes) {
            if (!NAME.equals(className)) {
                return null;
            }
            try {
                return bindToAddress(bytes, loader);
            } catch (Throwable e) { // left as it is: Flink still works
                return null;
            }
        }
    }

    /** Whether the builder (internal name) has the {@code forAddress(SocketAddress)} the
     * changed class calls: without it, the class would fail where it creates a server. */
    static boolean hasForAddress(String builder, ClassLoader loader) {
        try {
            ClassLoader where = loader != null ? loader : ClassLoader.getSystemClassLoader();
            Class.forName(builder.replace('/', '.'), false, where)
                    .getMethod("forAddress", SocketAddress.class);
            return true;
        } catch (ReflectiveOperationException | LinkageError missing) {
            return false;
        }
    }

    /** Called by the patched class instead of {@code InetSocketAddress.getPort()}. */
    public static SocketAddress address(InetSocketAddress address) {
        return address;
    }

    private static String patch(Instrumentation instrumentation) throws Exception {
        ClassLoader loader = ClassLoader.getSystemClassLoader();
        byte[] original;
        try (InputStream in = loader.getResourceAsStream(TARGET.replace('.', '/') + ".class")) {
            if (in == null) {
                return "unchanged: no " + TARGET;
            }
            original = in.readAllBytes();
        }
        byte[] patched = bindToAddress(original, loader);
        if (patched == null) {
            return "unchanged: " + TARGET + " is not as expected";
        }
        Class<?> target = Class.forName(TARGET, false, loader);
        instrumentation.redefineClasses(new ClassDefinition(target, patched));
        return "patched";
    }

    /**
     * The class file with its one {@code forPort(address.getPort())} call made
     * {@code forAddress(LoopbackAgent.address(address))}; null unless exactly one is found.
     *
     * <p>The two calls are rewritten in place (two 3-byte instructions for two), with four
     * constant-pool entries appended for them, so no offset in the class moves.
     */
    static byte[] bindToAddress(byte[] bytes, ClassLoader loader) throws IOException {
        ConstantPool pool = ConstantPool.read(bytes);
        if (pool == null) {
            return null;
        }
        int getPort = pool.methodref("java/net/InetSocketAddress", "getPort", "()I");
        int forPort = -1;
        String builder = null;
        for (int i = 1; i < pool.count; i++) {
            if (pool.tag[i] == 10 && pool.name(i).equals("forPort")) {
                String owner = pool.owner(i);
                if (owner.endsWith("/io/grpc/netty/NettyServerBuilder")
                        && pool.descriptor(i).equals("(I)L" + owner + ";")) {
                    forPort = i;
                    builder = owner;
                }
            }
        }
        if (getPort < 0 || forPort < 0 || !hasForAddress(builder, loader)) {
            return null;
        }
        byte[] call = {
            (byte) INVOKEVIRTUAL, (byte) (getPort >> 8), (byte) getPort,
            (byte) INVOKESTATIC, (byte) (forPort >> 8), (byte) forPort
        };
        int at = indexOf(bytes, call, pool.end);
        if (at < 0 || indexOf(bytes, call, at + 1) >= 0) {
            return null;
        }
        ByteArrayOutputStream added = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(added);
        int next = pool.count;
        int address = next + 5;
        utf8(out, "riverflink/LoopbackAgent"); // next
        out.writeByte(7); // Class
        out.writeShort(next);
        utf8(out, "address"); // next + 2
        utf8(out, "(Ljava/net/InetSocketAddress;)Ljava/net/SocketAddress;");
        out.writeByte(12); // NameAndType
        out.writeShort(next + 2);
        out.writeShort(next + 3);
        out.writeByte(10); // Methodref LoopbackAgent.address: next + 5
        out.writeShort(next + 1);
        out.writeShort(next + 4);
        int forAddress = next + 9;
        utf8(out, "forAddress"); // next + 6
        utf8(out, "(Ljava/net/SocketAddress;)L" + builder + ";");
        out.writeByte(12);
        out.writeShort(next + 6);
        out.writeShort(next + 7);
        out.writeByte(10); // Methodref NettyServerBuilder.forAddress: next + 9
        out.writeShort(pool.classIndex(forPort));
        out.writeShort(next + 8);
        out.flush();
        int newCount = next + 10;

        ByteArrayOutputStream result = new ByteArrayOutputStream(bytes.length + added.size());
        result.write(bytes, 0, 8);
        result.write(newCount >> 8);
        result.write(newCount);
        result.write(bytes, 10, pool.end - 10);
        added.writeTo(result);
        byte[] rest = java.util.Arrays.copyOfRange(bytes, pool.end, bytes.length);
        int site = at - pool.end;
        rest[site] = (byte) INVOKESTATIC;
        rest[site + 1] = (byte) (address >> 8);
        rest[site + 2] = (byte) address;
        rest[site + 4] = (byte) (forAddress >> 8);
        rest[site + 5] = (byte) forAddress;
        result.write(rest);
        return result.toByteArray();
    }

    private static void utf8(DataOutputStream out, String text) throws IOException {
        out.writeByte(1);
        out.writeUTF(text); // modified UTF-8 with its length: the class file's own encoding
    }

    private static int indexOf(byte[] bytes, byte[] part, int from) {
        outer:
        for (int i = from; i <= bytes.length - part.length; i++) {
            for (int j = 0; j < part.length; j++) {
                if (bytes[i + j] != part[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    /** The constant pool of a class file: each entry's tag and where its payload starts. */
    static final class ConstantPool {
        final ByteBuffer buffer;
        final int count;
        final int[] tag;
        final int[] at;
        int end;

        private ConstantPool(ByteBuffer buffer, int count) {
            this.buffer = buffer;
            this.count = count;
            this.tag = new int[count];
            this.at = new int[count];
        }

        static ConstantPool read(byte[] bytes) {
            ByteBuffer in = ByteBuffer.wrap(bytes);
            if (in.getInt() != 0xCAFEBABE) {
                return null;
            }
            in.position(8);
            ConstantPool pool = new ConstantPool(in, in.getShort() & 0xffff);
            for (int i = 1; i < pool.count; i++) {
                int tag = in.get() & 0xff;
                pool.tag[i] = tag;
                pool.at[i] = in.position();
                int size;
                switch (tag) {
                    case 1:
                        size = 2 + (in.getShort(in.position()) & 0xffff);
                        break;
                    case 7: case 8: case 16: case 19: case 20:
                        size = 2;
                        break;
                    case 15:
                        size = 3;
                        break;
                    case 3: case 4: case 9: case 10: case 11: case 12: case 17: case 18:
                        size = 4;
                        break;
                    case 5: case 6:
                        size = 8;
                        i++; // takes two entries
                        break;
                    default:
                        return null;
                }
                in.position(in.position() + size);
            }
            pool.end = in.position();
            return pool;
        }

        private int u2(int position) {
            return buffer.getShort(position) & 0xffff;
        }

        String utf8(int index) {
            int length = u2(at[index]);
            return new String(buffer.array(), at[index] + 2, length, StandardCharsets.UTF_8);
        }

        int classIndex(int ref) {
            return u2(at[ref]);
        }

        String owner(int ref) {
            return utf8(u2(at[classIndex(ref)]));
        }

        String name(int ref) {
            return utf8(u2(at[u2(at[ref] + 2)]));
        }

        String descriptor(int ref) {
            return utf8(u2(at[u2(at[ref] + 2)] + 2));
        }

        int methodref(String owner, String name, String descriptor) {
            for (int i = 1; i < count; i++) {
                if (tag[i] == 10 && name(i).equals(name) && owner(i).equals(owner)
                        && descriptor(i).equals(descriptor)) {
                    return i;
                }
            }
            return -1;
        }
    }
}
