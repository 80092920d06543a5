import QSSLWire
import Testing

@testable import QSSL

@Suite("The set of handshake types a state expects")
struct HandshakeTypeSetTests {
    @Test("holds exactly its members; a type of 64 or more is never in it; names are sorted")
    func membership() {
        let set: HandshakeTypeSet = [.finished, .clientHello, .keyUpdate]
        for raw in 0...255 {
            let type = HandshakeType(rawValue: UInt8(raw))
            #expect(set.contains(type) == [HandshakeType.clientHello, .finished, .keyUpdate].contains(type), "\(type)")
        }
        #expect(set.names == ["\(HandshakeType.clientHello)", "\(HandshakeType.finished)", "\(HandshakeType.keyUpdate)"].sorted())
        #expect(!([] as HandshakeTypeSet).contains(.clientHello))
    }
}
