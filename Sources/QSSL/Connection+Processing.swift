import QSSLWire

// TLSConnection: processing received records and handshake messages, completion and failure.

extension TLSConnection {
    /// RFC 5246 §7.2 warnings and empty records are ignored, but not without end: a peer that
    /// sends only these makes us spin (and, for renegotiation, answer) for nothing.
    static let maxConsecutiveIgnoredRecords = 32

    func process(_ type: ContentType, _ payload: [UInt8], into events: inout [TLSEvent]) throws(TLSError) {
        // RFC 8446 §5.1: a handshake message split over records may not have other records
        // between its fragments.
        if type != .handshake && !context.joiner.isEmpty {
            throw .misbehaved(.sentUnexpectedMessage, "\(type) record inside a fragmented handshake message")
        }
        if context.recordTrace && tracedReceivedRecords.count < Self.maxTracedRecords {
            tracedReceivedRecords.append((type.rawValue, payload.count))
        }
        // Records that carry nothing: at most a few in a row.
        if payload.isEmpty || type == .changeCipherSpec || (type == .alert && payload.first == AlertLevel.warning.rawValue) {
            consecutiveIgnoredRecords += 1
            if consecutiveIgnoredRecords > Self.maxConsecutiveIgnoredRecords {
                throw .misbehaved(.sentTooManyEmptyRecordsOrWarnings, "\(consecutiveIgnoredRecords) in a row")
            }
        } else {
            consecutiveIgnoredRecords = 0
        }
        switch type {
        case .changeCipherSpec:
            guard payload == [0x01] else { throw .misbehaved(.sentUnexpectedChangeCipherSpec) }
            context.note(.received, "ChangeCipherSpec", 1)
            switch phase {
            case .client12, .server12:
                // RFC 5246 §7.1: the peer's CCS switches our reading keys.
                switch takePhase() {
                case .client12(let state): phase = try state.handleChangeCipherSpec(context: &context)
                case .server12(let state): phase = try state.handleChangeCipherSpec(context: &context)
                default: preconditionFailure("the phase changed between two reads")  // local invariant: nothing ran in between
                }
            case .client, .server:
                // RFC 8446 §5: a compatibility CCS is ignored between the first ClientHello
                // and the peer's Finished.
                guard receivedFirstClientHello else { throw .misbehaved(.sentUnexpectedChangeCipherSpec) }
            default:
                throw .misbehaved(.sentUnexpectedChangeCipherSpec)
            }
        case .alert:
            // RFC 8446 §5.1: zero-length alert fragments are forbidden (unexpected_message);
            // any other length but 2 cannot be decoded.
            guard !payload.isEmpty else { throw .misbehaved(.sentUnexpectedMessage, "empty alert record") }
            guard payload.count == 2 else { throw .misbehaved(.sentInvalidAlert, "alert of \(payload.count) bytes") }
            let description = AlertDescription(rawValue: payload[1])
            if description == .closeNotify {
                // A close before the handshake completed is a failed handshake, not a clean
                // shutdown (an attacker may inject one while plaintext alerts are still read).
                guard !isHandshaking else {
                    let error = TLSError(.alertReceived(.closeNotify), "close_notify before the handshake completed")
                    phase = .failed(error)
                    throw error
                }
                receivedCloseNotify = true
                events.append(.closeNotify)
            } else if description == .userCanceled && payload[0] == AlertLevel.warning.rawValue {
                // RFC 8446 §6.1: user_canceled is followed by close_notify; nothing to do.
            } else if payload[0] == AlertLevel.warning.rawValue && isTLS12 {
                // RFC 5246 §7.2: TLS 1.2 warnings (no_renegotiation above all) do not end the connection.
                receivedWarnings.append(description)
            } else {
                // RFC 8446 §6: every other alert is fatal, whatever level it claims.
                let error = TLSError(.alertReceived(description))
                phase = .failed(error)
                throw error
            }
        case .handshake:
            guard !payload.isEmpty else { throw .misbehaved(.sentEmptyHandshakeRecord) }
            context.joiner.append(payload)  // its messages are handled by `drive`
        case .applicationData:
            guard isInTraffic else { throw .misbehaved(.sentApplicationDataBeforeHandshake) }
            if !payload.isEmpty {
                events.append(.applicationData(payload))
                postHandshakeMessagesSinceData = 0
                renegotiationRequestsSinceData = 0
            }
        default:
            throw .misbehaved(.sentRecordWithInvalidContentType)
        }
    }

    func handle(_ message: HandshakeMessage, into events: inout [TLSEvent]) throws(TLSError) {
        // Traced: all the work the message caused (its own steps are noted inside); after the
        // handshake, only for the first few post-handshake messages (read before the phase is
        // moved out, which clears the flag).
        let mark = isInTraffic && tracedPostHandshakeMessages >= Self.maxTracedPostHandshakeMessages ? nil : context.traceMark()
        let current = takePhase()
        let next: ConnectionPhase
        defer { if mark != nil { context.noteComputation("processing \(traceName(message))", since: mark) } }
        switch consume current {
        case .client(let state):
            traceReceived(message)
            next = try state.handle(message, context: &context)
            if message.type == .serverHello { noteNegotiated(message) }
        case .server(let state):
            traceReceived(message)
            receivedFirstClientHello = true
            next = try state.handle(message, context: &context)
        case .client12(let state):
            traceReceived(message)
            next = try state.handle(message, context: &context)
        case .server12(let state):
            traceReceived(message)
            next = try state.handle(message, context: &context)
        case .traffic(var traffic):
            if tracedPostHandshakeMessages < Self.maxTracedPostHandshakeMessages {
                tracedPostHandshakeMessages += 1
                traceReceived(message)
            }
            // Post-handshake messages that cost us work or a reply (KeyUpdate with
            // update_requested, refused renegotiation) are bounded between application data
            // records: a peer that sends only these is cut off instead of being answered forever.
            postHandshakeMessagesSinceData += 1
            if message.type == .helloRequest || message.type == .clientHello { renegotiationRequestsSinceData += 1 }
            guard postHandshakeMessagesSinceData <= Self.maxPostHandshakeMessagesBetweenData,
                renegotiationRequestsSinceData <= Self.maxRefusedRenegotiations
            else {
                throw .misbehaved(.sentUnexpectedMessage, "\(postHandshakeMessagesSinceData) post-handshake messages without application data")
            }
            switch try traffic.handlePostHandshake(message, context: &context) {
            case .none: next = .traffic(traffic)
            case .event(let event):
                events.append(event)
                // A declined request (nil) leaves the identity the handshake established.
                if case .clientAuthenticated(let identity?) = event.kind { summary?.peerIdentity = identity }
                next = .traffic(traffic)
            case .pause(let paused): next = .paused(paused)
            }
        case .paused:
            // Local invariant: `drive` reads nothing while paused.
            preconditionFailure("a message was handled while the handshake was paused")
        case .failed(let error):
            throw error
        case .transitioning:
            preconditionFailure("handle re-entered while transitioning")  // the driver is not re-entrant
        }
        phase = next
        try afterTransition(into: &events)
    }

    /// Surfaces a pause, or completes the handshake when traffic was reached.
    func afterTransition(into events: inout [TLSEvent]) throws(TLSError) {
        if isPaused, case .paused(let p) = phase {
            try context.flush()  // what precedes the pause goes out now
            events.append(.decisionNeeded(p.decision))
        }
        try completeIfTraffic(into: &events)
    }

    private func completeIfTraffic(into events: inout [TLSEvent]) throws(TLSError) {
        // Back in traffic after a post-handshake pause: data queued meanwhile goes out now.
        if isInTraffic, summary != nil, !bufferedApplicationData.isEmpty {
            try context.flush()
            for data in bufferedApplicationData { try context.writeApplicationData(data) }
            bufferedApplicationData = []
            if closeAfterBufferedData {
                closeAfterBufferedData = false
                try context.records.writeAlert(.warning, .closeNotify)
            }
        }
        if isInTraffic, summary == nil, case .traffic(let traffic) = phase {
            summary = traffic.summary
            events.append(.handshakeCompleted(traffic.summary))
            if let session = traffic.issuedSession { events.append(.sessionIssued(session)) }
            try context.flush()
            for data in bufferedApplicationData { try context.writeApplicationData(data) }
            bufferedApplicationData = []
            if closeAfterBufferedData {
                closeAfterBufferedData = false
                try context.records.writeAlert(.warning, .closeNotify)
            }
        }
    }

    private func traceReceived(_ message: HandshakeMessage) {
        guard context.recordTrace else { return }
        context.note(.received, traceName(message), message.body.count + 4)
    }

    private func traceName(_ message: HandshakeMessage) -> String {
        if message.type == .serverHello, message.body.count >= 34,
            Array(message.body[2..<34]) == ServerHello.helloRetryRequestRandom
        {
            return "HelloRetryRequest"
        }
        return "\(message.type)"
    }

    /// Sticky failure: the state becomes `.failed` and the one alert for the error is queued.
    func fail(with error: TLSError) {
        if case .failed = phase { return }
        phase = .failed(error)
        if let alert = error.alert {
            try? context.records.writeAlert(.fatal, alert)
        }
    }
}
